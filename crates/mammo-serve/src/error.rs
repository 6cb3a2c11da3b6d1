//! The crate's one error type and how each becomes an HTTP answer: a JSON body
//! `{"error": {"status": 400, "message": "..."}}` with the matching status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What can go wrong while serving; every variant names the offending upload or setting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The upload is not a DICOM image this service can read (400).
    #[error("{name}: not a readable DICOM image: {source}")]
    NotDicom {
        name: String,
        #[source]
        source: mammo_dicom::DicomError,
    },
    /// The upload is DICOM in a transfer syntax whose pixel data cannot be decoded (415).
    #[error(
        "{name}: transfer syntax {uid} is not supported (native, JPEG 2000, JPEG \
         lossless/baseline, JPEG-LS and RLE are)"
    )]
    UnsupportedTransferSyntax { name: String, uid: String },
    /// The DICOM image lacks what the results need, or the request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than `--max-request-mb` (413).
    #[error("request larger than the limit of {limit_mb} MB (--max-request-mb)")]
    TooLarge { limit_mb: u64 },
    /// Every queue slot is taken (503).
    #[error(
        "busy: {running} study being analysed and {queued} waiting (--queue); try again shortly"
    )]
    Busy { running: usize, queued: usize },
    /// No stored result under this id (404); results are kept in memory for a while only.
    #[error("no result {0} (results are kept in memory for the last few studies only)")]
    NoResult(String),
    /// The image could be read but the run's preprocessing failed on it (422).
    #[error("{name}: cannot prepare the image: {source}")]
    Prepare {
        name: String,
        #[source]
        source: Box<mammo_train::TrainError>,
    },
    /// The model failed (500).
    #[error("model: {0}")]
    Model(#[from] mammo_explain::ExplainError),
    /// Loading the run failed (at start-up).
    #[error("cannot load the run: {0}")]
    Load(#[source] Box<mammo_train::TrainError>),
    /// A DICOM result could not be written (500).
    #[error("cannot write the {what}: {cause}")]
    Write {
        what: &'static str,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing a result into `--out` failed (500).
    #[error("{path}: cannot write: {source}", path = path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The address cannot be listened on (at start-up), or the server failed.
    #[error("cannot serve on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The model thread has stopped (500).
    #[error("the model thread has stopped")]
    EngineGone,
}

impl From<mammo_train::TrainError> for ServeError {
    fn from(e: mammo_train::TrainError) -> Self {
        Self::Load(Box::new(e))
    }
}

impl ServeError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotDicom { .. } | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedTransferSyntax { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoResult(_) => StatusCode::NOT_FOUND,
            Self::Prepare { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Model(_)
            | Self::Load(_)
            | Self::Write { .. }
            | Self::Io { .. }
            | Self::Bind { .. }
            | Self::EngineGone => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message with its causes, one line (`a: b: c`), each cause once.
    pub fn message(&self) -> String {
        mammo_dicom::error_chain(self)
    }
}

/// The JSON error body every failing endpoint answers with.
pub fn error_body(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "error": {"status": status.as_u16(), "message": message}
    });
    (status, Json(body)).into_response()
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut r = error_body(status, &self.message());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("2"),
            );
        }
        r
    }
}
