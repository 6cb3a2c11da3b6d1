//! `mammo serve`: a local viewer and HTTP inference service for one screening study.
//!
//! A run's fold ensemble is loaded once onto a model thread ([`EngineHandle`]); an axum
//! router ([`router`]) serves the page (HTML/JS/CSS compiled into the binary, nothing from
//! the network) and the API:
//!
//! * `GET /api/v1/health`: `{"status": "ok", "model": {...}, "queue": {...}}`;
//! * `POST /api/v1/predict`: multipart, one or more DICOM files of one study; answers
//!   `{"images": [...], "breasts": [...], "model": {...}, ...}` with each image's
//!   probability, box in source pixels and heat map URL;
//! * `GET /api/v1/results/{id}[/...]`: a result kept in memory (the last
//!   [`KEPT_RESULTS`] studies): its JSON, heat maps, display pixels, Secondary Captures and
//!   SR.
//!
//! Safety: a request body limit ([`ServeConfig::max_request_bytes`]); a bounded queue
//! ([`ServeConfig::queue`]): a request that finds every slot taken is answered 503 and its
//! body dropped as it arrives, never held; one study on the model at a time; uploads stay in
//! memory and nothing a client sends becomes a file path (results written to `--out` are
//! named by server-made UIDs).

pub mod analysis;
pub mod dicom_out;
mod error;
mod page;
mod results;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Semaphore, oneshot};
use tower_http::limit::RequestBodyLimitLayer;

pub use analysis::{Engine, ModelInfo, Upload};
pub use error::ServeError;
pub use results::StudyResult;

/// How many analysed studies are kept in memory for their download links.
pub const KEPT_RESULTS: usize = 8;

/// Default `--max-request-mb`: 256 MB. The largest full-field digital mammograms are about
/// 5,900 x 4,700 pixels at 16 bits, 55 MB uncompressed; four views are 220 MB, and most
/// files are JPEG 2000 compressed to a third of that. With the default queue, at most
/// (queue + 1) x this is held by requests at once.
pub const DEFAULT_MAX_REQUEST_MB: u64 = 256;

/// Default `--queue`: studies waiting while one is analysed.
pub const DEFAULT_QUEUE: usize = 2;

/// Settings of a server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Largest request body accepted (413 beyond).
    pub max_request_bytes: u64,
    /// Requests that may wait while one is on the model (503 beyond).
    pub queue: usize,
    /// Where each study's results are also written (`<out>/<SR series UID>/...`).
    pub out: Option<PathBuf>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_REQUEST_MB << 20,
            queue: DEFAULT_QUEUE,
            out: None,
        }
    }
}

struct Job {
    uploads: Vec<Upload>,
    reply: oneshot::Sender<Result<StudyResult, ServeError>>,
}

/// The model thread: owns the [`Engine`] and analyses one study at a time, in arrival order.
#[derive(Clone)]
pub struct EngineHandle {
    jobs: std::sync::mpsc::Sender<Job>,
    pub info: ModelInfo,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("info", &self.info)
            .finish()
    }
}

impl EngineHandle {
    /// Starts the model thread; `load` runs on it (so the models never leave it) and its
    /// error is returned here.
    pub fn start<F>(load: F, out: Option<PathBuf>) -> Result<Self, ServeError>
    where
        F: FnOnce() -> Result<Engine, ServeError> + Send + 'static,
    {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("mammo-serve-model".into())
            .spawn(move || {
                let engine = match load() {
                    Ok(e) => {
                        let _ = ready_tx.send(Ok(e.info.clone()));
                        e
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    let result = results::analyse(&engine, &job.uploads, out.as_deref());
                    drop(job.uploads);
                    let _ = job.reply.send(result);
                }
            })
            .map_err(|source| ServeError::Io {
                path: PathBuf::from("(model thread)"),
                source,
            })?;
        let info = ready_rx.recv().map_err(|_| ServeError::EngineGone)??;
        Ok(Self { jobs, info })
    }

    async fn analyse(&self, uploads: Vec<Upload>) -> Result<StudyResult, ServeError> {
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job { uploads, reply })
            .map_err(|_| ServeError::EngineGone)?;
        rx.await.map_err(|_| ServeError::EngineGone)?
    }
}

/// What the handlers share.
struct AppState {
    engine: EngineHandle,
    config: ServeConfig,
    /// One permit per request admitted (on the model or waiting): queue + 1.
    slots: Arc<Semaphore>,
    results: Mutex<VecDeque<Arc<StudyResult>>>,
}

impl AppState {
    fn result(&self, id: &str) -> Result<Arc<StudyResult>, ServeError> {
        let kept = self.results.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .find(|r| r.id == id)
            .cloned()
            .ok_or_else(|| ServeError::NoResult(id.chars().take(64).collect()))
    }
}

/// The service's routes with their limits.
pub fn router(engine: EngineHandle, config: ServeConfig) -> Router {
    let limit = usize::try_from(config.max_request_bytes).unwrap_or(usize::MAX);
    let state = Arc::new(AppState {
        slots: Arc::new(Semaphore::new(config.queue + 1)),
        engine,
        config,
        results: Mutex::new(VecDeque::new()),
    });
    let upload = Router::new()
        .route("/api/v1/predict", post(predict))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(limit));
    let api = Router::new()
        .route("/api/v1/health", get(health))
        .merge(upload)
        .route("/api/v1/results/{id}", get(result_json))
        .route("/api/v1/results/{id}/structured-report.dcm", get(result_sr))
        .route(
            "/api/v1/results/{id}/images/{index}/{file}",
            get(result_image_file),
        );
    page::routes()
        .merge(api)
        .fallback(|| async { error::error_body(StatusCode::NOT_FOUND, "no such page") })
        .layer(middleware::from_fn(json_errors))
        .with_state(state)
}

/// Error answers made outside the handlers (tower-http's 413 on a declared length over the
/// limit, axum's 405, the fallback's 404) get the same JSON body as the handlers' errors.
async fn json_errors(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    if (r.status().is_client_error() || r.status().is_server_error()) && !is_json(&r) {
        let status = r.status();
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "request larger than the limit (--max-request-mb)",
            _ => status.canonical_reason().unwrap_or("error"),
        };
        let mut j = error::error_body(status, message);
        std::mem::swap(j.headers_mut(), r.headers_mut());
        j.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        j.headers_mut().remove(header::CONTENT_LENGTH);
        return j;
    }
    r
}

fn is_json(r: &Response) -> bool {
    r.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let free = state.slots.available_permits();
    axum::Json(serde_json::json!({
        "status": "ok",
        "model": state.engine.info,
        "queue": {
            "slots": state.config.queue + 1,
            "free": free,
        },
        "max_request_mb": state.config.max_request_bytes >> 20,
    }))
    .into_response()
}

async fn predict(State(state): State<Arc<AppState>>, multipart: Multipart) -> Response {
    match predict_inner(&state, multipart).await {
        Ok(r) => axum::Json(r.json.clone()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn predict_inner(
    state: &Arc<AppState>,
    mut multipart: Multipart,
) -> Result<Arc<StudyResult>, ServeError> {
    let limit_mb = state.config.max_request_bytes >> 20;
    // A slot first: a request that finds none is answered 503 without keeping its body (it
    // is read and dropped chunk by chunk, so that the client, still sending, gets the answer
    // instead of a reset connection).
    let Ok(_slot) = state.slots.clone().try_acquire_owned() else {
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
        return Err(ServeError::Busy {
            running: 1,
            queued: state.config.queue,
        });
    };
    let field_err = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::TooLarge { limit_mb }
        } else {
            ServeError::BadRequest(format!("cannot read the multipart body: {}", e.body_text()))
        }
    };
    let mut uploads = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(field_err)? {
        // Only file parts are studies' images; other form fields are ignored.
        if field.file_name().is_none() {
            continue;
        }
        let name = analysis::shown_name(field.file_name(), uploads.len());
        let bytes = field.bytes().await.map_err(field_err)?;
        uploads.push(Upload { name, bytes });
    }
    let result = Arc::new(state.engine.analyse(uploads).await?);
    let mut kept = state.results.lock().unwrap_or_else(|p| p.into_inner());
    kept.push_back(result.clone());
    while kept.len() > KEPT_RESULTS {
        kept.pop_front();
    }
    Ok(result)
}

async fn result_json(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ServeError> {
    Ok(axum::Json(state.result(&id)?.json.clone()).into_response())
}

fn file_response(bytes: Vec<u8>, content_type: &'static str, download: Option<String>) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response();
    if let Some(name) = download
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn result_sr(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ServeError> {
    let r = state.result(&id)?;
    Ok(file_response(
        r.sr.clone(),
        "application/dicom",
        Some(format!("{}.dcm", r.uids.sr_instance)),
    ))
}

async fn result_image_file(
    State(state): State<Arc<AppState>>,
    UrlPath((id, index, file)): UrlPath<(String, usize, String)>,
) -> Result<Response, ServeError> {
    let r = state.result(&id)?;
    let v = r
        .views
        .get(index)
        .ok_or_else(|| ServeError::NoResult(format!("{id}/images/{index}")))?;
    Ok(match file.as_str() {
        "heatmap.png" => file_response(v.heatmap_png.clone(), "image/png", None),
        "pixels.f32" => file_response(v.pixels_f32.clone(), "application/octet-stream", None),
        "secondary-capture.dcm" => file_response(
            v.secondary_capture.clone(),
            "application/dicom",
            Some(format!("{}.dcm", r.uids.sc_instances[index])),
        ),
        _ => {
            return Err(ServeError::NoResult(format!(
                "{id}/images/{index}/{}",
                file.chars().take(64).collect::<String>()
            )));
        }
    })
}

/// Serves `router(engine, config)` on `bind` until Ctrl-C (or SIGTERM on Unix), on a small
/// runtime of its own (two worker threads: the model has its own thread). `on_listening`
/// gets the bound address (port 0 resolved) once connections are accepted.
pub fn run_server(
    bind: SocketAddr,
    engine: EngineHandle,
    config: ServeConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let bind_err = |source| ServeError::Bind { addr: bind, source };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mammo-serve-http")
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io {
            path: PathBuf::from("(async runtime)"),
            source,
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(bind_err)?;
        on_listening(listener.local_addr().map_err(bind_err)?);
        axum::serve(listener, router(engine, config))
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(bind_err)
    })
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
