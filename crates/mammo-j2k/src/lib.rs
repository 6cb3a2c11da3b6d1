//! Safe JPEG 2000 encoding and decoding over OpenJPEG (`openjpeg-sys`).
//!
//! Two things this crate adds over a plain decoder, both needed by mammography:
//!
//! * **Reduced-resolution decoding.** A JPEG 2000 codestream is a wavelet pyramid; decoding
//!   with `reduce = r` stops `r` levels early and returns an image `2^r` times smaller in each
//!   direction without running the finest inverse transforms or entropy-decoding their code
//!   blocks (ISO/IEC 15444-1 Annex F). For a 3328x2560 mammogram rendered to 512 px this is
//!   the bulk of the work saved.
//! * **Both containers.** DICOM's JPEG 2000 transfer syntaxes (PS3.5 A.4.4) carry a bare
//!   codestream, but many real files (the RSNA screening set among them) carry a JP2 file
//!   (signature box first). [`detect_container`] tells them apart and both decode.
//!
//! Everything is in memory; no files, no global state. Errors and warnings that OpenJPEG
//! reports are collected and returned in the error, not printed.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;

use openjpeg_sys as opj;

/// The JP2 signature box (ISO/IEC 15444-1 I.5.1): length 12, type `jP  `, content `\r\n\x87\n`.
const JP2_SIGNATURE: [u8; 12] = [
    0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A,
];
/// SOC marker that starts a raw codestream (ISO/IEC 15444-1 A.4.1).
const J2K_SOC: [u8; 2] = [0xFF, 0x4F];

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum J2kError {
    /// The bytes start with neither a JP2 signature box nor an SOC marker.
    #[error("not a JPEG 2000 stream: starts with {0:02X?}")]
    NotJpeg2000(Vec<u8>),
    /// OpenJPEG refused the stream; its own messages are attached.
    #[error("JPEG 2000 {stage} failed: {messages}")]
    Codec {
        stage: &'static str,
        messages: String,
    },
    /// Parameters that cannot describe an image.
    #[error("invalid JPEG 2000 parameters: {0}")]
    InvalidInput(String),
}

type Result<T> = std::result::Result<T, J2kError>;

/// Which JPEG 2000 wrapping a byte stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// A bare codestream starting with SOC (`FF 4F`).
    Codestream,
    /// A JP2 file starting with the signature box.
    Jp2,
}

/// Looks at the first bytes; `None` when they are neither container.
pub fn detect_container(data: &[u8]) -> Option<Container> {
    if data.starts_with(&JP2_SIGNATURE) {
        Some(Container::Jp2)
    } else if data.starts_with(&J2K_SOC) {
        Some(Container::Codestream)
    } else {
        None
    }
}

/// Decoding options.
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// Discard this many of the finest resolution levels (0 = full size). Clamped to what
    /// the codestream has: [`Decoded::reduce`] tells which factor was used.
    pub reduce: u32,
    /// OpenJPEG worker threads for this one image (1 = none). Use 1 when files are already
    /// decoded in parallel.
    pub threads: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            reduce: 0,
            threads: 1,
        }
    }
}

/// Header facts, read without decoding any code block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    pub components: u32,
    /// Bits per sample of component 0.
    pub precision: u32,
    pub signed: bool,
    /// Number of resolution levels (decomposition levels + 1) of the first tile-component.
    pub resolutions: u32,
}

/// A decoded image: component-interleaved samples, row-major.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub width: u32,
    pub height: u32,
    pub components: u32,
    pub precision: u32,
    pub signed: bool,
    /// The reduce factor actually applied.
    pub reduce: u32,
    /// `width * height * components` samples, interleaved.
    pub data: Vec<i32>,
}

/// Reads the main header only.
pub fn read_header(data: &[u8]) -> Result<Header> {
    let container = container_of(data)?;
    let session = DecodeSession::open(data, container, 0, 1)?;
    session.header()
}

/// Decodes a whole image, optionally at reduced resolution.
pub fn decode(data: &[u8], options: &DecodeOptions) -> Result<Decoded> {
    let container = container_of(data)?;
    let reduce = if options.reduce > 0 {
        // Asking for more levels than the codestream has is an error in OpenJPEG; clamp.
        let header = DecodeSession::open(data, container, 0, 1)?.header()?;
        options.reduce.min(header.resolutions.saturating_sub(1))
    } else {
        0
    };
    let session = DecodeSession::open(data, container, reduce, options.threads)?;
    session.decode(reduce)
}

/// Lossless encoding parameters (reversible 5/3 wavelet, one quality layer).
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub container: Container,
    /// Wavelet resolution levels (decompositions + 1); 6 is OpenJPEG's default. Clamped so
    /// the smallest level is at least one pixel.
    pub resolutions: u32,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            container: Container::Codestream,
            resolutions: 6,
        }
    }
}

/// Encodes one grayscale image losslessly.
///
/// `samples` are row-major values that fit in `precision` bits (`signed` as two's
/// complement range). Values outside that range are an error rather than silently wrapped.
pub fn encode_lossless(
    samples: &[i32],
    width: u32,
    height: u32,
    precision: u32,
    signed: bool,
    options: &EncodeOptions,
) -> Result<Vec<u8>> {
    if width == 0 || height == 0 {
        return Err(J2kError::InvalidInput(format!(
            "empty image {width}x{height}"
        )));
    }
    if !(1..=16).contains(&precision) {
        return Err(J2kError::InvalidInput(format!(
            "precision {precision} outside 1..=16"
        )));
    }
    let n = width as usize * height as usize;
    if samples.len() != n {
        return Err(J2kError::InvalidInput(format!(
            "{} samples for a {width}x{height} image",
            samples.len()
        )));
    }
    let (lo, hi) = if signed {
        (-(1i64 << (precision - 1)), (1i64 << (precision - 1)) - 1)
    } else {
        (0, (1i64 << precision) - 1)
    };
    if let Some(bad) = samples
        .iter()
        .find(|&&v| (v as i64) < lo || (v as i64) > hi)
    {
        return Err(J2kError::InvalidInput(format!(
            "sample {bad} outside the {precision}-bit {} range",
            if signed { "signed" } else { "unsigned" }
        )));
    }
    let max_levels = 32 - width.min(height).leading_zeros(); // floor(log2(min)) + 1
    let resolutions = options.resolutions.clamp(1, max_levels.max(1));

    let messages = Messages::default();
    // SAFETY: all OpenJPEG objects are created, used and destroyed within this block; the
    // image data buffer is allocated by opj_image_create and filled within its bounds.
    unsafe {
        let mut params: opj::opj_cparameters_t = std::mem::zeroed();
        opj::opj_set_default_encoder_parameters(&mut params);
        params.tcp_numlayers = 1;
        params.tcp_rates[0] = 0.0; // lossless
        params.cp_disto_alloc = 1;
        params.irreversible = 0;
        params.numresolution = resolutions as i32;

        let mut comp: opj::opj_image_cmptparm_t = std::mem::zeroed();
        comp.dx = 1;
        comp.dy = 1;
        comp.w = width;
        comp.h = height;
        comp.prec = precision;
        comp.sgnd = signed as u32;
        let image = opj::opj_image_create(1, &mut comp, opj::COLOR_SPACE::OPJ_CLRSPC_GRAY);
        if image.is_null() {
            return Err(J2kError::Codec {
                stage: "image allocation",
                messages: String::new(),
            });
        }
        let image = ImageGuard(image);
        (*image.0).x0 = 0;
        (*image.0).y0 = 0;
        (*image.0).x1 = width;
        (*image.0).y1 = height;
        let dst = std::slice::from_raw_parts_mut((*(*image.0).comps).data, n);
        dst.copy_from_slice(samples);

        let format = match options.container {
            Container::Codestream => opj::CODEC_FORMAT::OPJ_CODEC_J2K,
            Container::Jp2 => opj::CODEC_FORMAT::OPJ_CODEC_JP2,
        };
        let codec = CodecGuard(opj::opj_create_compress(format));
        if codec.0.is_null() {
            return Err(J2kError::Codec {
                stage: "encoder creation",
                messages: String::new(),
            });
        }
        messages.install(codec.0);
        if opj::opj_setup_encoder(codec.0, &mut params, image.0) == 0 {
            return Err(messages.error("encoder setup"));
        }
        let mut sink = Sink {
            buf: Vec::with_capacity(n),
            pos: 0,
        };
        let stream = StreamGuard(new_output_stream(&mut sink));
        let ok = opj::opj_start_compress(codec.0, image.0, stream.0) != 0
            && opj::opj_encode(codec.0, stream.0) != 0
            && opj::opj_end_compress(codec.0, stream.0) != 0;
        drop(stream);
        if !ok {
            return Err(messages.error("encoding"));
        }
        Ok(sink.buf)
    }
}

fn container_of(data: &[u8]) -> Result<Container> {
    detect_container(data)
        .ok_or_else(|| J2kError::NotJpeg2000(data.iter().take(12).copied().collect()))
}

// ---------------------------------------------------------------------------------------
// OpenJPEG plumbing: RAII guards, in-memory streams, message capture.

struct CodecGuard(*mut opj::opj_codec_t);
impl Drop for CodecGuard {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by opj_create_(de)compress and destroyed once.
            unsafe { opj::opj_destroy_codec(self.0) }
        }
    }
}

struct StreamGuard(*mut opj::opj_stream_t);
impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by opj_stream_create and destroyed once.
            unsafe { opj::opj_stream_destroy(self.0) }
        }
    }
}

struct ImageGuard(*mut opj::opj_image_t);
impl Drop for ImageGuard {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by OpenJPEG and destroyed once.
            unsafe { opj::opj_image_destroy(self.0) }
        }
    }
}

/// Collects OpenJPEG's error and warning messages for one codec.
#[derive(Default)]
struct Messages {
    text: std::cell::RefCell<String>,
}

impl Messages {
    /// SAFETY: `codec` must be valid, and `self` must outlive every call into it.
    unsafe fn install(&self, codec: *mut opj::opj_codec_t) {
        let data = self as *const Messages as *mut c_void;
        // SAFETY: per the function contract.
        unsafe {
            opj::opj_set_error_handler(codec, Some(on_message), data);
            opj::opj_set_warning_handler(codec, Some(on_message), data);
            opj::opj_set_info_handler(codec, None, ptr::null_mut());
        }
    }

    fn error(&self, stage: &'static str) -> J2kError {
        let text = self.text.borrow();
        let messages = if text.is_empty() {
            "no message from OpenJPEG".to_owned()
        } else {
            text.trim().replace('\n', "; ")
        };
        J2kError::Codec { stage, messages }
    }
}

unsafe extern "C" fn on_message(msg: *const c_char, data: *mut c_void) {
    if msg.is_null() || data.is_null() {
        return;
    }
    // SAFETY: `data` is the `Messages` installed for this codec; `msg` is a C string.
    unsafe {
        let messages = &*(data as *const Messages);
        let text = CStr::from_ptr(msg).to_string_lossy();
        if let Ok(mut buf) = messages.text.try_borrow_mut()
            && buf.len() < 4096
        {
            buf.push_str(&text);
        }
    }
}

/// A read cursor over borrowed bytes, handed to OpenJPEG as user data.
struct Source<'a> {
    data: &'a [u8],
    pos: usize,
}

unsafe extern "C" fn src_read(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    // SAFETY: `user` is the `Source` that outlives the stream; `buf` has room for `n` bytes.
    unsafe {
        let src = &mut *(user as *mut Source);
        let left = src.data.len() - src.pos;
        if left == 0 {
            return usize::MAX; // (OPJ_SIZE_T)-1 signals end of stream
        }
        let k = n.min(left);
        ptr::copy_nonoverlapping(src.data.as_ptr().add(src.pos), buf as *mut u8, k);
        src.pos += k;
        k
    }
}

unsafe extern "C" fn src_skip(n: i64, user: *mut c_void) -> i64 {
    // SAFETY: `user` is the `Source` that outlives the stream.
    unsafe {
        let src = &mut *(user as *mut Source);
        let target = (src.pos as i64 + n).clamp(0, src.data.len() as i64);
        let moved = target - src.pos as i64;
        src.pos = target as usize;
        moved
    }
}

unsafe extern "C" fn src_seek(n: i64, user: *mut c_void) -> i32 {
    // SAFETY: `user` is the `Source` that outlives the stream.
    unsafe {
        let src = &mut *(user as *mut Source);
        if n < 0 || n as usize > src.data.len() {
            return 0;
        }
        src.pos = n as usize;
        1
    }
}

/// A growable write buffer with a cursor (JP2 writing seeks back to patch box lengths).
struct Sink {
    buf: Vec<u8>,
    pos: usize,
}

unsafe extern "C" fn sink_write(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    // SAFETY: `user` is the `Sink` that outlives the stream; `buf` holds `n` bytes.
    unsafe {
        let sink = &mut *(user as *mut Sink);
        let bytes = std::slice::from_raw_parts(buf as *const u8, n);
        let end = sink.pos + n;
        if end > sink.buf.len() {
            sink.buf.resize(end, 0);
        }
        sink.buf[sink.pos..end].copy_from_slice(bytes);
        sink.pos = end;
        n
    }
}

unsafe extern "C" fn sink_skip(n: i64, user: *mut c_void) -> i64 {
    // SAFETY: `user` is the `Sink` that outlives the stream.
    unsafe {
        let sink = &mut *(user as *mut Sink);
        let target = (sink.pos as i64 + n).max(0) as usize;
        if target > sink.buf.len() {
            sink.buf.resize(target, 0);
        }
        let moved = target as i64 - sink.pos as i64;
        sink.pos = target;
        moved
    }
}

unsafe extern "C" fn sink_seek(n: i64, user: *mut c_void) -> i32 {
    // SAFETY: `user` is the `Sink` that outlives the stream.
    unsafe {
        let sink = &mut *(user as *mut Sink);
        if n < 0 {
            return 0;
        }
        let target = n as usize;
        if target > sink.buf.len() {
            sink.buf.resize(target, 0);
        }
        sink.pos = target;
        1
    }
}

const STREAM_CHUNK: usize = 1 << 16;

/// SAFETY: `source` must outlive the returned stream.
unsafe fn new_input_stream(source: &mut Source<'_>) -> *mut opj::opj_stream_t {
    // SAFETY: per the function contract.
    unsafe {
        let stream = opj::opj_stream_create(STREAM_CHUNK, 1);
        if stream.is_null() {
            return stream;
        }
        opj::opj_stream_set_user_data(stream, source as *mut Source as *mut c_void, None);
        opj::opj_stream_set_user_data_length(stream, source.data.len() as u64);
        opj::opj_stream_set_read_function(stream, Some(src_read));
        opj::opj_stream_set_skip_function(stream, Some(src_skip));
        opj::opj_stream_set_seek_function(stream, Some(src_seek));
        stream
    }
}

/// SAFETY: `sink` must outlive the returned stream.
unsafe fn new_output_stream(sink: &mut Sink) -> *mut opj::opj_stream_t {
    // SAFETY: per the function contract.
    unsafe {
        let stream = opj::opj_stream_create(STREAM_CHUNK, 0);
        if stream.is_null() {
            return stream;
        }
        opj::opj_stream_set_user_data(stream, sink as *mut Sink as *mut c_void, None);
        opj::opj_stream_set_write_function(stream, Some(sink_write));
        opj::opj_stream_set_skip_function(stream, Some(sink_skip));
        opj::opj_stream_set_seek_function(stream, Some(sink_seek));
        stream
    }
}

/// One decoder over one input, header already read.
struct DecodeSession<'a> {
    // Field order is drop order: image, stream and codec go before the source and messages
    // they point into.
    image: ImageGuard,
    stream: StreamGuard,
    codec: CodecGuard,
    _source: Box<Source<'a>>,
    messages: Box<Messages>,
}

impl<'a> DecodeSession<'a> {
    fn open(data: &'a [u8], container: Container, reduce: u32, threads: u32) -> Result<Self> {
        let mut source = Box::new(Source { data, pos: 0 });
        let messages = Box::new(Messages::default());
        let format = match container {
            Container::Codestream => opj::CODEC_FORMAT::OPJ_CODEC_J2K,
            Container::Jp2 => opj::CODEC_FORMAT::OPJ_CODEC_JP2,
        };
        // SAFETY: the codec, stream and image are owned by guards in the returned session,
        // which also owns (boxed, so at stable addresses) the source and the message sink.
        unsafe {
            let codec = CodecGuard(opj::opj_create_decompress(format));
            if codec.0.is_null() {
                return Err(J2kError::Codec {
                    stage: "decoder creation",
                    messages: String::new(),
                });
            }
            messages.install(codec.0);
            let mut params: opj::opj_dparameters_t = std::mem::zeroed();
            opj::opj_set_default_decoder_parameters(&mut params);
            params.cp_reduce = reduce;
            if opj::opj_setup_decoder(codec.0, &mut params) == 0 {
                return Err(messages.error("decoder setup"));
            }
            if threads > 1 && opj::opj_has_thread_support() != 0 {
                opj::opj_codec_set_threads(codec.0, threads as i32);
            }
            let stream = StreamGuard(new_input_stream(&mut source));
            if stream.0.is_null() {
                return Err(J2kError::Codec {
                    stage: "stream creation",
                    messages: String::new(),
                });
            }
            let mut image: *mut opj::opj_image_t = ptr::null_mut();
            if opj::opj_read_header(stream.0, codec.0, &mut image) == 0 {
                let image = ImageGuard(image);
                drop(image);
                return Err(messages.error("header reading"));
            }
            Ok(Self {
                image: ImageGuard(image),
                stream,
                codec,
                _source: source,
                messages,
            })
        }
    }

    fn header(&self) -> Result<Header> {
        // SAFETY: image and codec are valid for the session's lifetime; the codestream info
        // is destroyed before returning.
        unsafe {
            let img = &*self.image.0;
            if img.numcomps == 0 {
                return Err(J2kError::Codec {
                    stage: "header reading",
                    messages: "no components".into(),
                });
            }
            let comp = &*img.comps;
            let mut info = opj::opj_get_cstr_info(self.codec.0);
            let resolutions = if info.is_null() || (*info).m_default_tile_info.tccp_info.is_null() {
                1
            } else {
                (*(*info).m_default_tile_info.tccp_info).numresolutions
            };
            if !info.is_null() {
                opj::opj_destroy_cstr_info(&mut info);
            }
            Ok(Header {
                width: img.x1 - img.x0,
                height: img.y1 - img.y0,
                components: img.numcomps,
                precision: comp.prec,
                signed: comp.sgnd != 0,
                resolutions,
            })
        }
    }

    fn decode(self, reduce: u32) -> Result<Decoded> {
        // SAFETY: decoding fills the image owned by this session; component buffers are read
        // within the width/height OpenJPEG reports for each component.
        unsafe {
            if opj::opj_decode(self.codec.0, self.stream.0, self.image.0) == 0
                || opj::opj_end_decompress(self.codec.0, self.stream.0) == 0
            {
                return Err(self.messages.error("decoding"));
            }
            let img = &*self.image.0;
            let ncomp = img.numcomps as usize;
            let comps = std::slice::from_raw_parts(img.comps, ncomp);
            let (w, h) = (comps[0].w, comps[0].h);
            for (i, c) in comps.iter().enumerate() {
                if c.w != w || c.h != h || c.data.is_null() {
                    return Err(J2kError::Codec {
                        stage: "decoding",
                        messages: format!(
                            "component {i} is {}x{}, component 0 is {w}x{h} (subsampled \
                             components are not supported)",
                            c.w, c.h
                        ),
                    });
                }
            }
            let n = w as usize * h as usize;
            let data = if ncomp == 1 {
                std::slice::from_raw_parts(comps[0].data, n).to_vec()
            } else {
                let mut out = vec![0i32; n * ncomp];
                for (ci, c) in comps.iter().enumerate() {
                    let src = std::slice::from_raw_parts(c.data, n);
                    for (i, v) in src.iter().enumerate() {
                        out[i * ncomp + ci] = *v;
                    }
                }
                out
            };
            Ok(Decoded {
                width: w,
                height: h,
                components: img.numcomps,
                precision: comps[0].prec,
                signed: comps[0].sgnd != 0,
                reduce,
                data,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32, bits: u32) -> Vec<i32> {
        let max = (1i64 << bits) - 1;
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as i64, (i / w) as i64);
                (((x * 37 + y * 101 + (x * y) % 17) * 13) % (max + 1)) as i32
            })
            .collect()
    }

    #[test]
    fn lossless_round_trip_both_containers() {
        for container in [Container::Codestream, Container::Jp2] {
            for bits in [8, 12, 16] {
                let (w, h) = (67, 45);
                let px = ramp(w, h, bits);
                let opts = EncodeOptions {
                    container,
                    resolutions: 4,
                };
                let bytes = encode_lossless(&px, w, h, bits, false, &opts).unwrap();
                assert_eq!(detect_container(&bytes), Some(container));
                let header = read_header(&bytes).unwrap();
                assert_eq!(
                    (header.width, header.height, header.precision),
                    (w, h, bits)
                );
                assert_eq!(header.resolutions, 4);
                let d = decode(&bytes, &DecodeOptions::default()).unwrap();
                assert_eq!((d.width, d.height, d.components), (w, h, 1));
                assert_eq!(d.data, px, "{container:?} {bits} bits");
            }
        }
    }

    #[test]
    fn signed_round_trip() {
        let px: Vec<i32> = (0..40 * 30).map(|i| (i % 4096) - 2048).collect();
        let bytes = encode_lossless(&px, 40, 30, 12, true, &EncodeOptions::default()).unwrap();
        let d = decode(&bytes, &DecodeOptions::default()).unwrap();
        assert!(d.signed);
        assert_eq!(d.data, px);
    }

    #[test]
    fn reduced_decode_halves_size_and_tracks_means() {
        let (w, h) = (128, 96);
        let px: Vec<i32> = (0..w * h).map(|i| ((i % w) * 16) as i32).collect();
        let bytes = encode_lossless(&px, w, h, 12, false, &EncodeOptions::default()).unwrap();
        for r in 1..=3u32 {
            let d = decode(
                &bytes,
                &DecodeOptions {
                    reduce: r,
                    threads: 1,
                },
            )
            .unwrap();
            assert_eq!(
                (d.width, d.height, d.reduce),
                (w.div_ceil(1 << r), h.div_ceil(1 << r), r)
            );
            // The low-pass band of a horizontal ramp is the same ramp, subsampled.
            let row: Vec<i32> = d.data[..d.width as usize].to_vec();
            assert!(
                row.windows(2).all(|p| p[1] >= p[0]),
                "not monotone at reduce {r}: {row:?}"
            );
            // The 5/3 low-pass of a linear ramp keeps the even samples (the predict step
            // zeroes the high-pass away from the border), so the reduced image is the
            // original subsampled by 2^r, up to border effects.
            let step = 1usize << r;
            let mut abs_err = 0.0;
            for y in 0..d.height as usize {
                for x in 0..d.width as usize {
                    let want = px[(y * step) * w as usize + x * step] as f64;
                    abs_err += (d.data[y * d.width as usize + x] as f64 - want).abs();
                }
            }
            let mae = abs_err / d.data.len() as f64;
            assert!(
                mae < 4.0 * step as f64,
                "reduce {r}: mean abs error {mae} vs subsampled original"
            );
        }
        // More levels than exist is clamped, not an error.
        let d = decode(
            &bytes,
            &DecodeOptions {
                reduce: 30,
                threads: 1,
            },
        )
        .unwrap();
        assert_eq!(d.reduce, 5);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        let err = decode(b"GIF89a......", &DecodeOptions::default()).unwrap_err();
        assert!(err.to_string().contains("not a JPEG 2000 stream"), "{err}");
        let px = ramp(64, 64, 12);
        let bytes = encode_lossless(&px, 64, 64, 12, false, &EncodeOptions::default()).unwrap();
        let cut = &bytes[..bytes.len() / 3];
        // A truncated codestream either errors or (OpenJPEG is lenient) decodes to something
        // that is not the original; it must never crash.
        if let Ok(d) = decode(cut, &DecodeOptions::default()) {
            assert_ne!(d.data, px);
        }
        let err = encode_lossless(&[5000], 1, 1, 12, false, &EncodeOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("outside the 12-bit unsigned range"),
            "{err}"
        );
    }
}
