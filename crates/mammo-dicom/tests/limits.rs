//! Files whose headers promise more than they hold, or more than is sane: each is refused
//! with its own reason before anything the size of the claim is allocated.

use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use mammo_dicom::{DicomError, DicomImage};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mammo-dicom-limits-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A copy of `src` with some header values replaced.
fn edited(src: &str, dst: &Path, values: &[(dicom_core::Tag, VR, PrimitiveValue)]) {
    let mut obj = dicom_object::open_file(fixture(src)).unwrap();
    for (tag, vr, v) in values {
        obj.put(DataElement::new(*tag, *vr, v.clone()));
    }
    obj.write_to_file(dst).unwrap();
}

fn size(rows: u16, columns: u16) -> Vec<(dicom_core::Tag, VR, PrimitiveValue)> {
    vec![
        (tags::ROWS, VR::US, PrimitiveValue::from(rows)),
        (tags::COLUMNS, VR::US, PrimitiveValue::from(columns)),
    ]
}

#[test]
fn a_header_claiming_a_huge_image_is_refused_at_open() {
    let d = scratch("huge");
    let bomb = d.join("bomb.dcm");
    edited("synth12_j2k_gdcm.dcm", &bomb, &size(20000, 20000));
    let err = DicomImage::open(&bomb).unwrap_err();
    assert!(matches!(err, DicomError::TooLarge { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&bomb.display().to_string()), "{msg}");
    assert!(
        msg.contains("400000000 values per frame") && msg.contains("--max-pixels"),
        "{msg}"
    );

    // Allowed by a raised limit, the J2K codestream still disagrees with the header, which
    // is found from its main header before any tile is decoded.
    let img = DicomImage::open_with_limit(&bomb, 1 << 30).unwrap();
    let msg = img.decode(0, 0).unwrap_err().to_string();
    assert!(
        msg.contains("codestream (SIZ) is 240x300, the DICOM header says 20000x20000"),
        "{msg}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_codestream_claiming_more_than_the_header_is_refused_before_decoding() {
    let d = scratch("siz");
    let mut bytes = std::fs::read(fixture("synth12_j2k_gdcm.dcm")).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .expect("SOC then SIZ");
    // Xsiz and Ysiz, big-endian, after the markers, Lsiz and Rsiz.
    bytes[at + 8..at + 12].copy_from_slice(&20000u32.to_be_bytes());
    bytes[at + 12..at + 16].copy_from_slice(&20000u32.to_be_bytes());
    let bomb = d.join("siz.dcm");
    std::fs::write(&bomb, &bytes).unwrap();
    let msg = DicomImage::open(&bomb)
        .and_then(|i| i.decode(0, 0))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("codestream (SIZ) is 20000x20000, the DICOM header says 240x300"),
        "{msg}"
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn malformed_pixel_data_gets_a_reason_of_its_own() {
    let d = scratch("malformed");
    // Native data shorter than Rows x Columns promise.
    let short = d.join("short.dcm");
    edited("synth12_explicit_le.dcm", &short, &size(2000, 2000));
    let msg = DicomImage::open(&short).unwrap_err().to_string();
    assert!(
        msg.contains("Pixel Data holds") && msg.contains("need 8000000"),
        "{msg}"
    );
    assert!(!msg.contains("out of range"), "{msg}");

    // More frames than fragments, without an offset table.
    let frames = d.join("frames.dcm");
    edited(
        "MR_small_RLE.dcm",
        &frames,
        &[(tags::NUMBER_OF_FRAMES, VR::IS, PrimitiveValue::from("3"))],
    );
    let msg = DicomImage::open(&frames).unwrap_err().to_string();
    assert!(
        msg.contains("3 frames in 1 fragments and no usable Basic Offset Table"),
        "{msg}"
    );

    // Asking for a frame the file does not have.
    let img = DicomImage::open(fixture("MR_small.dcm")).unwrap();
    let msg = img.decode(5, 0).unwrap_err().to_string();
    assert!(msg.contains("frame 5 requested, the image has 1"), "{msg}");
    std::fs::remove_dir_all(&d).ok();
}

#[cfg(unix)]
#[test]
fn only_regular_files_are_opened() {
    let d = scratch("fifo");
    let fifo = d.join("x.dcm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let msg = DicomImage::open(&fifo).unwrap_err().to_string();
    assert!(msg.contains("not a regular file (a FIFO)"), "{msg}");
    let msg = DicomImage::open(&d).unwrap_err().to_string();
    assert!(msg.contains("not a regular file (a folder)"), "{msg}");
    std::fs::remove_dir_all(&d).ok();
}

/// Inputs that made libFuzzer's memory limit trip (`oom-*`) must now be refused before the
/// parser allocates anything: replaying them elsewhere would pass silently on a machine
/// with enough memory, so this checks for the refusal itself.
#[test]
fn memory_bombs_found_by_fuzzing_are_refused_up_front() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/dicom");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("oom-") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        let err = DicomImage::from_bytes(&name, &bytes, 1 << 22)
            .err()
            .unwrap_or_else(|| panic!("{name} opens"));
        assert!(err.to_string().contains("claims"), "{name}: {err}");
        seen += 1;
    }
    assert!(seen >= 2, "{seen} oom regressions in {}", dir.display());
}

/// `synth12_deflated.dcm` (dcmconv +td) split into its file meta group and its deflated
/// data set, inflated.
fn deflated_fixture() -> (Vec<u8>, Vec<u8>) {
    use std::io::Read;
    let bytes = std::fs::read(fixture("synth12_deflated.dcm")).unwrap();
    // The meta group's length is the value of (0002,0000), right after the preamble.
    let meta_len = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    let end = 144 + meta_len;
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(&bytes[end..])
        .read_to_end(&mut inflated)
        .unwrap();
    (bytes[..end].to_vec(), inflated)
}

fn deflate(meta: &[u8], data_set: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(meta.to_vec(), flate2::Compression::best());
    enc.write_all(data_set).unwrap();
    enc.finish().unwrap()
}

#[test]
fn a_deflate_bomb_is_refused_before_it_is_inflated_into_memory() {
    let (meta, mut data_set) = deflated_fixture();
    // The fixture itself reads and decodes.
    let honest = deflate(&meta, &data_set);
    let img = DicomImage::from_bytes("honest.dcm", &honest, 1 << 20).unwrap();
    assert_eq!(img.decode(0, 0).unwrap().width, 240);

    // 256 MiB of zeros in a private element after the pixel data: about 250 KiB deflated.
    let size = 256u32 << 20;
    data_set.extend_from_slice(&[0xE1, 0x7F, 0x10, 0x10, b'O', b'B', 0, 0]);
    data_set.extend_from_slice(&size.to_le_bytes());
    data_set.resize(data_set.len() + size as usize, 0);
    let bomb = deflate(&meta, &data_set);
    drop(data_set);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    // The limit for 2^20-pixel frames is 4 MiB + 64 MiB of inflated data set.
    let err = DicomImage::from_bytes("bomb.dcm", &bomb, 1 << 20).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("bomb.dcm") && msg.contains("inflates to more than 71303168 bytes"),
        "{msg}"
    );
}
