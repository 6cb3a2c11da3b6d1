//! `mammo serve` over HTTP on 127.0.0.1 (a random port): a phantom study's answer against
//! `mammo predict`, its DICOM results, the error statuses, 100 concurrent requests, and the
//! page in headless Chromium (which also makes the README's screenshot).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use serde_json::Value;

mod common;
mod serve_support;

use common::{browser, mammo, stderr, tempdir, tiny_run};
use serve_support::{
    BOUNDARY, Cdp, Server, assert_error, get, multipart, post_files, read_files, request,
    request_expect_continue,
};

/// The tiny run and its phantom data, made once for every test here.
fn shared_run() -> &'static (PathBuf, PathBuf) {
    static RUN: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        // A static is never dropped, so a scratch folder per process would be left behind by
        // every run: this one lives in cargo's scratch folder for the target, under a fixed
        // name, and the next run replaces it.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-shared-run");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        tiny_run(&dir)
    })
}

/// Phantom patient `k`'s screening study: the first L-CC, L-MLO, R-CC and R-MLO image (a
/// patient may have extra views).
fn patient_study(data: &Path, k: usize) -> Vec<PathBuf> {
    let table = mammo_preprocess::read_rsna_csv(&data.join("train.csv")).unwrap();
    let mut patients: Vec<&str> = table.rows.iter().map(|r| r.patient_id.as_str()).collect();
    patients.dedup();
    let patient = patients[k];
    ["L", "R"]
        .iter()
        .flat_map(|side| ["CC", "MLO"].map(|view| (*side, view)))
        .map(|(side, view)| {
            let r = table
                .rows
                .iter()
                .find(|r| r.patient_id == patient && r.laterality == side && r.view == view)
                .unwrap_or_else(|| panic!("patient {patient} has no {side} {view}"));
            data.join("train_images")
                .join(patient)
                .join(format!("{}.dcm", r.image_id))
        })
        .collect()
}

/// The first phantom patient's four views (one study).
fn study_files(data: &Path) -> Vec<PathBuf> {
    patient_study(data, 0)
}

/// `mammo predict --csv`'s probability per file name.
fn predict_csv(run: &Path, files: &[PathBuf], dir: &Path) -> Vec<(String, f64)> {
    let csv = dir.join("predict.csv");
    let mut args = vec![
        "predict".to_string(),
        "--run".into(),
        run.display().to_string(),
        "--device".into(),
        "flex".into(),
        "--csv".into(),
        csv.display().to_string(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = mammo(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                Path::new(f[0])
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                f[1].parse().unwrap(),
            )
        })
        .collect()
}

fn dicom(bytes: &[u8]) -> dicom_object::DefaultDicomObject {
    dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Auto)
        .from_reader(bytes)
        .expect("a readable DICOM result")
}

fn text(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.element(tag)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

/// The phantom file with its transfer syntax declared as MPEG2 (which nothing here
/// decodes): the file meta group rebuilt, the data set left as it was.
fn as_mpeg2(bytes: &[u8]) -> Vec<u8> {
    assert_eq!(&bytes[128..132], b"DICM");
    let group_len = u32::from_le_bytes(bytes[140..144].try_into().unwrap()) as usize;
    let data_set = &bytes[144 + group_len..];
    let old = dicom_object::meta::FileMetaTable::from_reader(&bytes[128..]).unwrap();
    let meta = dicom_object::meta::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(old.media_storage_sop_class_uid())
        .media_storage_sop_instance_uid(old.media_storage_sop_instance_uid())
        .transfer_syntax("1.2.840.10008.1.2.4.100")
        .implementation_class_uid("2.25.1")
        .build()
        .unwrap();
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    meta.write(&mut out).unwrap();
    out.extend_from_slice(data_set);
    out
}

#[test]
fn serve_answers_a_study_like_predict_with_dicom_results_and_json_errors() {
    let (data, run) = shared_run();
    let dir = tempdir("serve-api");
    let out = dir.join("out");
    let files = study_files(data);
    assert_eq!(files.len(), 4, "{files:?}");
    let server = Server::start(
        run,
        &[
            "--max-request-mb",
            "1",
            "--queue",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let addr = &server.addr;

    let h = get(addr, "/api/v1/health");
    assert_eq!(h.status, 200);
    assert_eq!(h.json()["status"], "ok");
    assert_eq!(h.json()["model"]["folds"], serde_json::json!([0, 1]));

    // The page and its files come from the binary.
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("<script src=\"/app.js\">"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(get(addr, "/app.js").status, 200);
    assert_error(&get(addr, "/nothing-here"), 404, "no such page");

    // A 4-view study: 4 images, 2 breasts, probabilities as `mammo predict`'s.
    let started = Instant::now();
    let a = post_files(addr, &read_files(&files));
    let latency = started.elapsed();
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    eprintln!("one 4-view study: {latency:?}");
    let j = a.json();
    let images = j["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    let breasts = j["breasts"].as_array().unwrap();
    assert_eq!(breasts.len(), 2);
    assert_eq!(
        (
            breasts[0]["laterality"].as_str(),
            breasts[1]["laterality"].as_str()
        ),
        (Some("L"), Some("R"))
    );
    let expected = predict_csv(run, &files, &dir);
    for (name, p) in &expected {
        let im = images
            .iter()
            .find(|i| i["file"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} missing from {j}"));
        let got = im["probability"].as_f64().unwrap();
        // predict's CSV has 6 decimals.
        assert!(
            (got - p).abs() <= 5e-7 + 1e-6,
            "{name}: serve {got} vs predict {p}"
        );
    }
    for b in breasts {
        let idx: Vec<usize> = b["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(idx.len(), 2, "two views per breast: {b}");
        let mean = idx
            .iter()
            .map(|&i| images[i]["probability"].as_f64().unwrap())
            .sum::<f64>()
            / 2.0;
        assert!((b["probability"].as_f64().unwrap() - mean).abs() < 1e-12);
        for &i in &idx {
            assert_eq!(images[i]["laterality"], b["laterality"]);
        }
    }
    let sources: Vec<dicom_object::DefaultDicomObject> = files
        .iter()
        .map(|f| dicom_object::open_file(f).unwrap())
        .collect();
    let study_uid = text(&sources[0], tags::STUDY_INSTANCE_UID);
    assert_eq!(j["study_instance_uid"], study_uid.as_str());
    for im in images {
        let (w, h) = (
            im["columns"].as_f64().unwrap(),
            im["rows"].as_f64().unwrap(),
        );
        let b: Vec<f64> = im["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            0.0 <= b[0] && b[0] < b[2] && b[2] <= w && 0.0 <= b[1] && b[1] < b[3] && b[3] <= h,
            "box {b:?} outside the {w}x{h} source"
        );
        let src = sources
            .iter()
            .find(|s| text(s, tags::SOP_INSTANCE_UID) == im["sop_instance_uid"].as_str().unwrap())
            .expect("the source's SOP Instance UID");
        let heat = get(addr, im["heatmap"].as_str().unwrap());
        assert_eq!(heat.status, 200);
        assert_eq!(heat.header("content-type"), Some("image/png"));
        let d = &im["display"];
        let pixels = get(addr, d["pixels"].as_str().unwrap());
        assert_eq!(
            pixels.body.len() as u64,
            4 * d["width"].as_u64().unwrap() * d["height"].as_u64().unwrap()
        );
        // The Secondary Capture: same study, a new series and instance, the source referenced.
        let sc = get(addr, im["secondary_capture"]["url"].as_str().unwrap());
        assert_eq!(sc.status, 200);
        let sc = dicom(&sc.body);
        assert_eq!(text(&sc, tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.7");
        assert_eq!(text(&sc, tags::STUDY_INSTANCE_UID), study_uid);
        assert_eq!(text(&sc, tags::PATIENT_ID), text(src, tags::PATIENT_ID));
        assert_ne!(
            text(&sc, tags::SERIES_INSTANCE_UID),
            text(src, tags::SERIES_INSTANCE_UID)
        );
        assert_eq!(
            text(&sc, tags::SERIES_INSTANCE_UID),
            j["secondary_capture_series_instance_uid"].as_str().unwrap()
        );
        assert_eq!(
            text(&sc, tags::SOP_INSTANCE_UID),
            im["secondary_capture"]["sop_instance_uid"]
                .as_str()
                .unwrap()
        );
        let refs = sc.element(tags::SOURCE_IMAGE_SEQUENCE).unwrap();
        let item = &refs.items().unwrap()[0];
        assert_eq!(
            text(item, tags::REFERENCED_SOP_INSTANCE_UID),
            text(src, tags::SOP_INSTANCE_UID)
        );
        assert_eq!(text(&sc, tags::PHOTOMETRIC_INTERPRETATION), "RGB");
    }
    // The SR: per breast its probability, and each image's box selected from the source.
    let sr = get(addr, j["structured_report"]["url"].as_str().unwrap());
    assert_eq!(sr.status, 200);
    let sr = dicom(&sr.body);
    assert_eq!(
        text(&sr, tags::SOP_CLASS_UID),
        "1.2.840.10008.5.1.4.1.1.88.33"
    );
    assert_eq!(text(&sr, tags::STUDY_INSTANCE_UID), study_uid);
    let content = sr.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap();
    let groups: Vec<_> = content
        .iter()
        .filter(|c| text(c, tags::VALUE_TYPE) == "CONTAINER")
        .collect();
    assert_eq!(groups.len(), 2);
    for (g, b) in groups.iter().zip(breasts) {
        let children = g.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap();
        let num = children
            .iter()
            .find(|c| text(c, tags::VALUE_TYPE) == "NUM")
            .unwrap();
        let mv = &num
            .element(tags::MEASURED_VALUE_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0];
        let v: f64 = text(mv, tags::NUMERIC_VALUE).parse().unwrap();
        assert!((v - b["probability"].as_f64().unwrap()).abs() < 1e-6);
        let regions: Vec<_> = children
            .iter()
            .filter(|c| text(c, tags::VALUE_TYPE) == "SCOORD")
            .collect();
        assert_eq!(regions.len(), 2);
        for r in regions {
            let pts = r
                .element(tags::GRAPHIC_DATA)
                .unwrap()
                .to_multi_float32()
                .unwrap();
            assert_eq!(pts.len(), 10, "closed rectangle");
            let img = &r.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap()[0];
            assert_eq!(text(img, tags::RELATIONSHIP_TYPE), "SELECTED FROM");
            let uid = text(
                &img.element(tags::REFERENCED_SOP_SEQUENCE)
                    .unwrap()
                    .items()
                    .unwrap()[0],
                tags::REFERENCED_SOP_INSTANCE_UID,
            );
            let im = images
                .iter()
                .find(|i| i["sop_instance_uid"] == uid.as_str())
                .unwrap();
            let bx = im["box"].as_array().unwrap();
            assert!((pts[0] as f64 - bx[0].as_f64().unwrap()).abs() < 1e-3);
        }
    }
    // --out holds the same files, named by the server.
    let folder = out.join(
        j["structured_report"]["series_instance_uid"]
            .as_str()
            .unwrap(),
    );
    for name in [
        "result.json",
        "sr.dcm",
        "sc_1.dcm",
        "sc_4.dcm",
        "heatmap_4.png",
    ] {
        assert!(
            folder.join(name).is_file(),
            "{name} not in {}",
            folder.display()
        );
    }

    // Not DICOM: 400. Too large: 413 (declared length, answered before the body is sent).
    // A transfer syntax nothing here decodes: 415.
    let a = post_files(addr, &[("notes.txt".into(), b"hello, not DICOM".to_vec())]);
    assert_error(&a, 400, "notes.txt: not a readable DICOM image");
    let a = post_files(addr, &[("empty.dcm".into(), Vec::new())]);
    assert_error(&a, 400, "empty.dcm");
    assert_error(&post_files(addr, &[]), 400, "no DICOM file");
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let big = multipart(&[("big.dcm".into(), vec![0u8; 2 << 20])]);
    let a = request_expect_continue(addr, &ct, &big);
    assert_error(&a, 413, "limit");
    let mpeg = as_mpeg2(&std::fs::read(&files[0]).unwrap());
    let a = post_files(addr, &[("video.dcm".into(), mpeg)]);
    assert_error(&a, 415, "1.2.840.10008.1.2.4.100");
    let mixed = vec![
        read_files(&files[..1]).remove(0),
        read_files(&patient_study(data, 1)[..1]).remove(0),
    ];
    assert_error(&post_files(addr, &mixed), 400, "one study per request");
    assert_error(
        &get(
            addr,
            "/api/v1/results/0123456789abcdef/structured-report.dcm",
        ),
        404,
        "no result",
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// 100 requests at once on loopback (bounded: each thread sends one and waits at most 5
/// minutes): every one is answered 200 or 503, the server stays up, its memory bounded.
#[test]
fn serve_answers_100_concurrent_requests_with_200_or_503() {
    let (data, run) = shared_run();
    let server = Server::start(run, &["--queue", "2"]);
    let one = read_files(&study_files(data)[..1]);
    let body = multipart(&one);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let started = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let (addr, body, ct) = (&server.addr, &body, &ct);
                s.spawn(move || {
                    request(
                        addr,
                        "POST",
                        "/api/v1/predict",
                        &[("Content-Type", ct)],
                        body,
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let busy = statuses.iter().filter(|&&s| s == 503).count();
    let peak = server.peak_rss_mb();
    eprintln!(
        "100 concurrent requests: {ok} answered 200, {busy} answered 503 in {:?}; server peak RSS \
         {peak:.0} MB",
        started.elapsed()
    );
    assert_eq!(ok + busy, 100, "other statuses: {statuses:?}");
    assert!(ok >= 1 && busy >= 1, "{ok} ok, {busy} busy");
    assert_eq!(get(&server.addr, "/api/v1/health").status, 200, "still up");
    assert!(peak < 1500.0, "server peak RSS {peak:.0} MB");
}

/// The page in headless Chromium: a 4-view study chosen in its file input is analysed and
/// every view shows with its heat map overlay and box. Writes the screenshot to
/// `target/serve.png`, and to `docs/serve.png` with MAMMO_UPDATE_SCREENSHOT=1.
#[test]
fn serve_page_shows_the_overlay_in_headless_chromium() {
    let Some(b) = browser() else {
        panic!("no headless browser: install Debian's `chromium` (what .ci/run does)");
    };
    // The README's screenshot is made on a run at a useful input size (the tiny run's 32 px
    // give layer4 a 1x1 map): MAMMO_SERVE_PAGE_RUN=RUN MAMMO_SERVE_PAGE_DATA=PHANTOM_DIR.
    let (data, run) = match (
        std::env::var_os("MAMMO_SERVE_PAGE_DATA"),
        std::env::var_os("MAMMO_SERVE_PAGE_RUN"),
    ) {
        (Some(d), Some(r)) => (PathBuf::from(d), PathBuf::from(r)),
        _ => shared_run().clone(),
    };
    let (data, run) = (&data, &run);
    let server = Server::start(run, &[]);
    let dir = tempdir("serve-browser");
    let mut chrome = Command::new(b)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            "--remote-allow-origins=*",
            "--window-size=1500,900",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut err = BufReader::new(chrome.stderr.take().unwrap());
    let chrome = Kill(chrome);
    let mut port = None;
    let mut seen = String::new();
    for _ in 0..200 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen += &line;
        if let Some(rest) = line.trim().strip_prefix("DevTools listening on ws://") {
            port = rest.split('/').next().map(str::to_string);
            break;
        }
    }
    let devtools = port.unwrap_or_else(|| panic!("no DevTools address from chromium: {seen}"));
    // Keep draining chromium's stderr so that it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let list = get(&devtools, "/json/list").json();
    let page_ws = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        .expect("a page target")
        .to_string();
    let (ws, _) = tungstenite::connect(page_ws.as_str()).expect("DevTools WebSocket");
    let mut cdp = Cdp { ws, next: 0 };
    cdp.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 1500, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    );
    cdp.call(
        "Page.navigate",
        serde_json::json!({"url": format!("http://{}/", server.addr)}),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while cdp.eval("document.readyState === 'complete' && !!document.getElementById('files')")
        != Value::Bool(true)
    {
        assert!(Instant::now() < deadline, "the page did not load");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Choose the study in the file input, as a user would.
    let root = cdp.call("DOM.getDocument", serde_json::json!({}));
    let input = cdp.call(
        "DOM.querySelector",
        serde_json::json!({"nodeId": root["root"]["nodeId"], "selector": "#files"}),
    );
    let files: Vec<String> = study_files(data)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    cdp.call(
        "DOM.setFileInputFiles",
        serde_json::json!({"nodeId": input["nodeId"], "files": files}),
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = cdp.eval("document.body.dataset.state");
        if s == "done" {
            break;
        }
        assert!(
            s != "error",
            "{}",
            cdp.eval("document.getElementById('status').textContent")
        );
        assert!(Instant::now() < deadline, "no result in the page: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let facts = cdp.eval(
        r#"(() => {
            const heat = [...document.querySelectorAll('.stage img.heat')];
            const canvas = document.querySelector('.stage canvas');
            const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let lit = 0;
            for (let i = 0; i < px.length; i += 4) if (px[i] > 0) lit++;
            return {
                views: heat.length,
                heat_loaded: heat.filter(i => i.complete && i.naturalWidth > 0).length,
                heat_visible: heat.filter(i => parseFloat(getComputedStyle(i).opacity) > 0).length,
                boxes: document.querySelectorAll('.stage rect.box').length,
                breasts: document.querySelectorAll('#breasts tbody tr').length,
                lit_fraction: lit / (px.length / 4),
            };
        })()"#,
    );
    assert_eq!(facts["views"], 4, "{facts}");
    assert_eq!(facts["heat_loaded"], 4, "{facts}");
    assert_eq!(facts["heat_visible"], 4, "{facts}");
    assert_eq!(facts["boxes"], 4, "{facts}");
    assert_eq!(facts["breasts"], 2, "{facts}");
    assert!(facts["lit_fraction"].as_f64().unwrap() > 0.1, "{facts}");
    let shot = cdp.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    use base64::Engine as _;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve.png");
    std::fs::write(&target, &png).unwrap();
    if std::env::var_os("MAMMO_UPDATE_SCREENSHOT").is_some_and(|v| v == "1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/serve.png");
        std::fs::write(&docs, &png).unwrap();
    }
    drop(chrome);
    std::fs::remove_dir_all(&dir).ok();
}
