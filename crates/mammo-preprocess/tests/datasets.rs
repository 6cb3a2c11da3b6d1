//! The dataset loaders on small fixtures made to each dataset's documented layout: labels,
//! laterality and view, paths, lesion boxes, and a malformed row each.

mod common;

use std::path::Path;

use common::{Header, breast, mask, scratch, write, write_dicom};
use mammo_dataset::{LESION_CSV_COLUMNS, LesionKind, read_manifest};
use mammo_preprocess::{
    DatasetBatchOptions, DatasetKind, OutputSize, PipelineConfig, load_dataset, run_dataset_batch,
};

fn err_of(kind: DatasetKind, root: &Path) -> String {
    load_dataset(kind, root).expect_err("malformed").to_string()
}

const MASS_HEADER: &str = "patient_id,breast_density,left or right breast,image view,\
                           abnormality id,abnormality type,mass shape,mass margins,assessment,\
                           pathology,subtlety,image file path,cropped image file path,\
                           ROI mask file path\n";
const CALC_HEADER: &str = "patient_id,breast density,left or right breast,image view,\
                           abnormality id,abnormality type,calc type,calc distribution,\
                           assessment,pathology,subtlety,image file path,cropped image file path,\
                           ROI mask file path\n";

#[test]
fn cbis_ddsm_tables_folders_and_masks() {
    let root = scratch("cbis");
    let data = root.join("CBIS-DDSM");
    let h = Header::default();
    // Classic folders, as the tables name them.
    let full = "Mass-Training_P_00001_LEFT_CC/1.3.6.1/1.3.6.2/000000.dcm";
    write_dicom(&data.join(full), 40, 30, &breast(40, 30, "L"), h);
    let roi1 = "Mass-Training_P_00001_LEFT_CC_1/1.3.6.1/1.3.6.3";
    write_dicom(
        &data.join(roi1).join("000000.dcm"),
        8,
        8,
        &breast(8, 8, "L"),
        h,
    );
    write_dicom(
        &data.join(roi1).join("000001.dcm"),
        40,
        30,
        &mask(40, 30, [5, 6, 12, 15]),
        h,
    );
    let roi2 = "Mass-Training_P_00001_LEFT_CC_2/1.3.6.1/1.3.6.4";
    write_dicom(
        &data.join(roi2).join("000000.dcm"),
        6,
        6,
        &breast(6, 6, "L"),
        h,
    );
    write_dicom(
        &data.join(roi2).join("000001.dcm"),
        40,
        30,
        &mask(40, 30, [20, 3, 25, 9]),
        h,
    );
    // Row 3 swaps the crop and the mask, as some rows of the real tables do.
    write(
        &root,
        "mass_case_description_train_set.csv",
        &format!(
            "{MASS_HEADER}\
             P_00001,3,LEFT,CC,1,mass,IRREGULAR,SPICULATED,4,MALIGNANT,5,{full},{roi1}/000000.dcm,\"{roi1}/000001.dcm\n\"\n\
             P_00001,3,LEFT,CC,2,mass,OVAL,CIRCUMSCRIBED,3,BENIGN,4,{full},{roi2}/000001.dcm,{roi2}/000000.dcm\n"
        ),
    );
    // Descriptive folders (later NBIA downloads): the table's file names do not exist.
    write_dicom(
        &root
            .join("Calc-Test_P_00002_RIGHT_MLO")
            .join("08-29-2017-DDSM-NA-1/1.000000-full mammogram images-2/1-1.dcm"),
        40,
        30,
        &breast(40, 30, "R"),
        h,
    );
    let roi = root.join("Calc-Test_P_00002_RIGHT_MLO_1/08-29-2017-DDSM-NA-3");
    write_dicom(
        &roi.join("1.000000-cropped images-4/1-1.dcm"),
        5,
        5,
        &breast(5, 5, "R"),
        h,
    );
    write_dicom(
        &roi.join("2.000000-ROI mask images-5/1-1.dcm"),
        40,
        30,
        &mask(40, 30, [30, 20, 31, 22]),
        h,
    );
    write(
        &root,
        "calc_case_description_test_set.csv",
        &format!(
            "{CALC_HEADER}\
             P_00002,2,RIGHT,MLO,1,calcification,PLEOMORPHIC,CLUSTERED,2,BENIGN_WITHOUT_CALLBACK,3,Calc-Test_P_00002_RIGHT_MLO/1.3.6.1.4/1.3.6.1.5/000000.dcm,Calc-Test_P_00002_RIGHT_MLO_1/1.3.6.1.4/1.3.6.1.6/000000.dcm,Calc-Test_P_00002_RIGHT_MLO_1/1.3.6.1.4/1.3.6.1.6/000001.dcm\n"
        ),
    );

    let ds = load_dataset(DatasetKind::CbisDdsm, &root).unwrap();
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let ids: Vec<_> = ds.images.iter().map(|r| r.image_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "Calc-Test_P_00002_RIGHT_MLO",
            "Mass-Training_P_00001_LEFT_CC"
        ]
    );
    let (calc, mass) = (&ds.images[0], &ds.images[1]);
    assert_eq!(
        (calc.label, mass.label),
        (Some(0), Some(1)),
        "any malignant -> 1"
    );
    assert_eq!(
        (
            mass.patient_id.as_str(),
            mass.laterality.as_str(),
            mass.view.as_str()
        ),
        ("P_00001", "L", "CC")
    );
    assert_eq!((calc.laterality.as_str(), calc.view.as_str()), ("R", "MLO"));
    assert_eq!(
        (mass.split.as_str(), calc.split.as_str()),
        ("training", "test")
    );
    assert_eq!((mass.birads.as_str(), mass.density.as_str()), ("4", "3"));
    assert_eq!(
        calc.density, "2",
        "the calc table's 'breast density' spelling"
    );
    assert_eq!(mass.dicom, ds.root.join("CBIS-DDSM").join(full));
    assert!(
        calc.dicom
            .ends_with("1.000000-full mammogram images-2/1-1.dcm")
    );
    let boxes: Vec<_> = ds
        .lesions
        .iter()
        .map(|l| {
            (
                l.image_id.as_str(),
                l.kind,
                [l.x0, l.y0, l.x1, l.y1],
                l.pathology.as_str(),
            )
        })
        .collect();
    assert_eq!(
        boxes,
        [
            (
                "Calc-Test_P_00002_RIGHT_MLO",
                LesionKind::Calcification,
                [30.0, 20.0, 31.0, 22.0],
                "BENIGN_WITHOUT_CALLBACK"
            ),
            (
                "Mass-Training_P_00001_LEFT_CC",
                LesionKind::Mass,
                [5.0, 6.0, 12.0, 15.0],
                "MALIGNANT"
            ),
            (
                "Mass-Training_P_00001_LEFT_CC",
                LesionKind::Mass,
                [20.0, 3.0, 25.0, 9.0],
                "BENIGN"
            ),
        ]
    );
    assert_eq!(ds.lesions[1].description, "IRREGULAR; SPICULATED");

    // A missing mask keeps the image and warns, naming the table and row.
    std::fs::remove_file(data.join(roi2).join("000001.dcm")).unwrap();
    let ds = load_dataset(DatasetKind::CbisDdsm, &root).unwrap();
    assert_eq!((ds.images.len(), ds.lesions.len()), (2, 2));
    assert!(
        ds.warnings.len() == 1
            && ds.warnings[0].contains("mass_case_description_train_set.csv: row 3"),
        "{:?}",
        ds.warnings
    );

    // Malformed rows: an unknown pathology, paths that leave the root.
    let bad = scratch("cbis-bad");
    let row = |pathology: &str, path: &str| {
        format!(
            "{MASS_HEADER}P_00001,3,LEFT,CC,1,mass,OVAL,CIRCUMSCRIBED,3,BENIGN,4,{full},x/c.dcm,x/m.dcm\nP_00003,3,LEFT,CC,1,mass,OVAL,CIRCUMSCRIBED,3,{pathology},4,{path},x/c.dcm,x/m.dcm\n"
        )
    };
    write(
        &bad,
        "mass_case_description_test_set.csv",
        &row("MAYBE", full),
    );
    let e = err_of(DatasetKind::CbisDdsm, &bad);
    assert!(
        e.contains("mass_case_description_test_set.csv")
            && e.contains("row 3")
            && e.contains("pathology"),
        "{e}"
    );
    for escape in [
        "../../etc/passwd",
        "/etc/passwd",
        "a/../../b.dcm",
        "C:\\x.dcm",
    ] {
        write(
            &bad,
            "mass_case_description_test_set.csv",
            &row("BENIGN", escape),
        );
        let e = err_of(DatasetKind::CbisDdsm, &bad);
        assert!(
            e.contains("row 3") && e.contains("image file path"),
            "{escape}: {e}"
        );
    }
    let empty = scratch("cbis-none");
    assert!(err_of(DatasetKind::CbisDdsm, &empty).contains("case description"));
}

const VINDR_BREAST: &str = "study_id,series_id,image_id,laterality,view_position,height,width,breast_birads,breast_density,split\n\
s1,se1,i1,L,CC,30,40,BI-RADS 1,DENSITY B,training\n\
s1,se1,i2,R,MLO,30,40,BI-RADS 4,DENSITY C,training\n\
s2,se2,i3,R,CC,30,40,BI-RADS 3,DENSITY A,test\n";
const VINDR_FINDINGS: &str = "study_id,series_id,image_id,laterality,view_position,height,width,breast_birads,breast_density,finding_categories,finding_birads,xmin,ymin,xmax,ymax,split\n\
s1,se1,i1,L,CC,30,40,BI-RADS 1,DENSITY B,['No Finding'],,,,,,training\n\
s1,se1,i2,R,MLO,30,40,BI-RADS 4,DENSITY C,\"['Mass', 'Suspicious Calcification']\",BI-RADS 4,10.5,5.25,20,15,training\n\
s2,se2,i3,R,CC,30,40,BI-RADS 3,DENSITY A,['Suspicious Calcification'],BI-RADS 3,1,2,3,4,test\n";

/// A VinDr-Mammo fixture; returns its root.
pub fn vindr_fixture(name: &str) -> std::path::PathBuf {
    let root = scratch(name);
    write(&root, "breast-level_annotations.csv", VINDR_BREAST);
    write(&root, "finding_annotations.csv", VINDR_FINDINGS);
    for (study, image, side) in [("s1", "i1", "L"), ("s1", "i2", "R"), ("s2", "i3", "R")] {
        let p = root.join(format!("images/{study}/{image}.dicom"));
        write_dicom(&p, 40, 30, &breast(40, 30, side), Header::default());
    }
    root
}

#[test]
fn vindr_breast_level_and_findings() {
    let root = vindr_fixture("vindr");
    let ds = load_dataset(DatasetKind::Vindr, &root).unwrap();
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let got: Vec<_> = ds
        .images
        .iter()
        .map(|r| {
            (
                r.patient_id.as_str(),
                r.image_id.as_str(),
                r.laterality.as_str(),
                r.view.as_str(),
                r.label,
                r.birads.as_str(),
                r.density.as_str(),
                r.split.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("s1", "i1", "L", "CC", Some(0), "1", "B", "training"),
            ("s1", "i2", "R", "MLO", Some(1), "4", "C", "training"),
            ("s2", "i3", "R", "CC", Some(0), "3", "A", "test"),
        ]
    );
    assert_eq!(ds.images[1].dicom, ds.root.join("images/s1/i2.dicom"));
    assert_eq!(ds.lesions.len(), 2, "No Finding rows have no box");
    let m = &ds.lesions[0];
    assert_eq!(
        (m.image_id.as_str(), m.kind, [m.x0, m.y0, m.x1, m.y1]),
        ("i2", LesionKind::Mass, [10.5, 5.25, 20.0, 15.0])
    );
    assert_eq!(
        (m.birads.as_str(), m.description.as_str()),
        ("4", "Mass; Suspicious Calcification")
    );
    assert_eq!(ds.lesions[1].kind, LesionKind::Calcification);

    let bad = |file: &str, text: &str| {
        let root = vindr_fixture("vindr-bad");
        write(&root, file, text);
        err_of(DatasetKind::Vindr, &root)
    };
    let e = bad(
        "finding_annotations.csv",
        &VINDR_FINDINGS.replace("10.5", "abc"),
    );
    assert!(
        e.contains("finding_annotations.csv") && e.contains("row 3") && e.contains("xmin"),
        "{e}"
    );
    let e = bad(
        "breast-level_annotations.csv",
        &VINDR_BREAST.replace("BI-RADS 3", "BI-RADS 7"),
    );
    assert!(
        e.contains("breast-level_annotations.csv")
            && e.contains("row 4")
            && e.contains("breast_birads"),
        "{e}"
    );
    let e = bad(
        "breast-level_annotations.csv",
        &VINDR_BREAST.replace("s2,se2", "..,se2"),
    );
    assert!(e.contains("row 4") && e.contains("study_id"), "{e}");
    let e = bad(
        "finding_annotations.csv",
        &VINDR_FINDINGS.replace("s2,se2,i3", "s2,se2,i9"),
    );
    assert!(e.contains("row 4") && e.contains("i9"), "{e}");
}

#[test]
fn cmmd_clinical_table_and_headers() {
    let root = scratch("cmmd");
    write(
        &root,
        "CMMD_clinicaldata_revision.csv",
        "ID1,LeftRight,Age,number,abnormality,classification,subtype\n\
         D1-0001,L,44,2,calcification,Malignant,\n\
         D1-0002,R,50,1,mass,Benign,\n\
         D2-0001,L,61,1,both,Malignant,Luminal A\n",
    );
    let series = "CMMD/D1-0001/07-18-2010-NA-NA-79377/1.000000-NA-70244";
    for (file, side, view, uid) in [
        ("1-1", "L", "CC", "2.25.11"),
        ("1-2", "L", "MLO", "2.25.12"),
        ("1-3", "R", "CC", "2.25.13"),
    ] {
        let h = Header {
            laterality: Some(side),
            view: Some(view),
            sop_uid: Some(uid),
        };
        write_dicom(
            &root.join(format!("{series}/{file}.dcm")),
            40,
            30,
            &breast(40, 30, side),
            h,
        );
    }
    let h = Header {
        laterality: Some("R"),
        view: Some("MLO"),
        sop_uid: Some("2.25.21"),
    };
    write_dicom(
        &root.join("CMMD/D1-0002/x/y/1-1.dcm"),
        40,
        30,
        &breast(40, 30, "R"),
        h,
    );

    let ds = load_dataset(DatasetKind::Cmmd, &root).unwrap();
    let got: Vec<_> = ds
        .images
        .iter()
        .map(|r| {
            (
                r.patient_id.as_str(),
                r.image_id.as_str(),
                r.laterality.as_str(),
                r.view.as_str(),
                r.label,
                r.age.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("D1-0001", "2.25.11", "L", "CC", Some(1), "44"),
            ("D1-0001", "2.25.12", "L", "MLO", Some(1), "44"),
            ("D1-0001", "2.25.13", "R", "CC", None, "44"),
            ("D1-0002", "2.25.21", "R", "MLO", Some(0), "50"),
        ]
    );
    assert_eq!(ds.images[0].dicom, ds.root.join(series).join("1-1.dcm"));
    assert_eq!(
        ds.images[0].other.get("abnormality").map(String::as_str),
        Some("calcification")
    );
    assert!(ds.lesions.is_empty());
    assert!(
        ds.warnings.len() == 1 && ds.warnings[0].contains("D2-0001"),
        "{:?}",
        ds.warnings
    );

    let bad = scratch("cmmd-bad");
    write(
        &bad,
        "CMMD_clinicaldata_revision.csv",
        "ID1,LeftRight,Age,number,abnormality,classification,subtype\nD1-0001,L,44,2,mass,Malignant,\nD1-0002,R,50,1,mass,Probably,\n",
    );
    let e = err_of(DatasetKind::Cmmd, &bad);
    assert!(
        e.contains("CMMD_clinicaldata_revision.csv")
            && e.contains("row 3")
            && e.contains("classification"),
        "{e}"
    );
    write(
        &bad,
        "CMMD_clinicaldata_revision.csv",
        "ID1,LeftRight,Age,number,abnormality,classification,subtype\n../D1,L,44,2,mass,Malignant,\n",
    );
    let e = err_of(DatasetKind::Cmmd, &bad);
    assert!(e.contains("row 2") && e.contains("ID1"), "{e}");
    let xlsx = scratch("cmmd-xlsx");
    write(&xlsx, "CMMD_clinicaldata_revision.xlsx", "PK");
    assert!(err_of(DatasetKind::Cmmd, &xlsx).contains("save its sheet as CSV"));
}

const INBREAST_CSV: &str = "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads\n\
removed;removed;R;CC;201001;22678622;2;4c\n\
removed;removed;L;MLO;201001;22678646;1;2\n\
removed;removed;L;CC;201001;20586908;3;3\n";

fn plist(rois: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Images</key>
	<array>
		<dict>
			<key>ImageHeight</key><integer>30</integer>
			<key>ImageIndex</key><integer>0</integer>
			<key>ImageWidth</key><integer>40</integer>
			<key>NumberOfROIs</key><integer>2</integer>
			<key>ROIs</key>
			<array>{rois}</array>
		</dict>
	</array>
</dict>
</plist>
"#
    )
}

fn roi(name: &str, points: &[&str]) -> String {
    let pts: String = points
        .iter()
        .map(|p| format!("<string>{p}</string>"))
        .collect();
    format!(
        "<dict><key>Area</key><real>0</real><key>Center</key><string>(0, 0)</string>\
         <key>Name</key><string>{name}</string><key>NumberOfPoints</key><integer>{}</integer>\
         <key>Point_mm</key><array/><key>Point_px</key><array>{pts}</array>\
         <key>Type</key><integer>15</integer></dict>",
        points.len()
    )
}

#[test]
fn inbreast_table_dicoms_and_xml_rois() {
    let root = scratch("inbreast");
    write(&root, "INbreast.csv", INBREAST_CSV);
    for (name, side) in [
        ("22678622_61b13c59bcba149e_MG_R_CC_ANON", "R"),
        ("22678646_61b13c59bcba149e_MG_L_ML_ANON", "L"),
        ("20586908_6c613a14b80a8591_MG_L_CC_ANON", "L"),
    ] {
        write_dicom(
            &root.join(format!("AllDICOMs/{name}.dcm")),
            40,
            30,
            &breast(40, 30, side),
            Header::default(),
        );
    }
    let rois = [
        roi(
            "Mass",
            &["(10.2, 5.7)", "(20.9, 6.1)", "(15.000000, 18.400000)"],
        ),
        roi("Calcification", &["(30.000000, 12.000000)"]),
        roi("Assymetry", &["(1, 1)", "(3, 2)"]),
    ]
    .concat();
    write(&root, "AllXML/22678622.xml", &plist(&rois));

    let ds = load_dataset(DatasetKind::Inbreast, &root).unwrap();
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let got: Vec<_> = ds
        .images
        .iter()
        .map(|r| {
            (
                r.patient_id.as_str(),
                r.image_id.as_str(),
                r.laterality.as_str(),
                r.view.as_str(),
                r.label,
                r.birads.as_str(),
                r.density.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "61b13c59bcba149e",
                "22678622",
                "R",
                "CC",
                Some(1),
                "4c",
                "2"
            ),
            (
                "61b13c59bcba149e",
                "22678646",
                "L",
                "MLO",
                Some(0),
                "2",
                "1"
            ),
            ("6c613a14b80a8591", "20586908", "L", "CC", Some(0), "3", "3"),
        ]
    );
    assert!(
        ds.images[0]
            .dicom
            .ends_with("AllDICOMs/22678622_61b13c59bcba149e_MG_R_CC_ANON.dcm")
    );
    let boxes: Vec<_> = ds
        .lesions
        .iter()
        .map(|l| (l.image_id.as_str(), l.kind, [l.x0, l.y0, l.x1, l.y1]))
        .collect();
    assert_eq!(
        boxes,
        [
            ("22678622", LesionKind::Mass, [10.0, 5.0, 21.0, 19.0]),
            (
                "22678622",
                LesionKind::Calcification,
                [30.0, 12.0, 31.0, 13.0]
            ),
            ("22678622", LesionKind::Finding, [1.0, 1.0, 4.0, 3.0]),
        ]
    );

    write(&root, "INbreast.csv", &INBREAST_CSV.replace(";3\n", ";7\n"));
    let e = err_of(DatasetKind::Inbreast, &root);
    assert!(
        e.contains("INbreast.csv") && e.contains("row 4") && e.contains("Bi-Rads"),
        "{e}"
    );
    write(&root, "INbreast.csv", INBREAST_CSV);
    write(
        &root,
        "AllXML/22678622.xml",
        &plist(&roi("Mass", &["(1, 2"])),
    );
    let e = err_of(DatasetKind::Inbreast, &root);
    assert!(
        e.contains("row 2") && e.contains("22678622.xml") && e.contains("ROIs[0]"),
        "{e}"
    );
    write(&root, "AllXML/22678622.xml", &plist(&rois));
    write(
        &root,
        "INbreast.csv",
        &INBREAST_CSV.replace("22678646", "../22678646"),
    );
    let e = err_of(DatasetKind::Inbreast, &root);
    assert!(e.contains("row 3") && e.contains("File Name"), "{e}");
}

fn small_config() -> PipelineConfig {
    PipelineConfig {
        sizes: vec![OutputSize::square(32)],
        ..PipelineConfig::default()
    }
}

#[test]
fn a_dataset_batch_writes_manifest_and_lesions_and_goes_on_past_failures() {
    let root = vindr_fixture("vindr-batch");
    // i3's DICOM is missing; i1's is a link to a file outside the root.
    std::fs::remove_file(root.join("images/s2/i3.dicom")).unwrap();
    let outside = scratch("vindr-batch-outside").join("x.dicom");
    std::fs::rename(root.join("images/s1/i1.dicom"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("images/s1/i1.dicom")).unwrap();
    let out = scratch("vindr-batch-out");
    let opts = DatasetBatchOptions {
        kind: DatasetKind::Vindr,
        root: root.clone(),
        out: out.clone(),
        jobs: 1,
        progress: false,
    };
    let report = run_dataset_batch(&opts, &small_config()).unwrap();
    assert_eq!(
        (report.total, report.processed, report.failed),
        (3, 1, 2),
        "{report:?}"
    );
    let reasons: Vec<_> = report.failures.iter().map(|f| f.reason.as_str()).collect();
    assert!(
        reasons.iter().any(|r| r.contains("outside --images")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("no such file")),
        "{reasons:?}"
    );
    let rows = read_manifest(&out.join("32/manifest.csv")).unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.image_id.as_str(),
                mammo_dataset::label_text(r.label),
                r.split.as_str(),
                r.birads.as_str(),
                r.is_ok(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("i1", "0", "training", "1", false),
            ("i2", "1", "training", "4", true),
            ("i3", "0", "test", "3", false),
        ]
    );
    assert_eq!(rows[1].path, "s1/i2.png");
    assert!(out.join("32/s1/i2.png").is_file());

    // lesions.csv reads the way `mammo explain --truth` reads it, and its boxes land in the PNG.
    assert_eq!(
        report.lesions_csv.as_deref(),
        Some(out.join("lesions.csv").as_path())
    );
    assert_eq!(report.lesion_boxes, 2);
    let truth = mammo_dataset::lesion_boxes_by_image(&out.join("lesions.csv")).unwrap();
    assert_eq!(truth["i2"], vec![[10.5, 5.25, 20.0, 15.0]]);
    assert_eq!(truth["i3"], vec![[1.0, 2.0, 3.0, 4.0]]);
    let [x0, y0, x1, y1] = rows[1].box_to_output(truth["i2"][0]);
    // The crop may cut a box at the breast's edge; it still overlaps the PNG.
    assert!(x0 < x1 && y0 < y1 && x0 < 32.0 && x1 > 0.0 && y0 < 32.0 && y1 > 0.0);

    // Resumed: the finished image is kept; a changed label only rewrites its row.
    let report = run_dataset_batch(&opts, &small_config()).unwrap();
    assert_eq!(
        (report.skipped_done, report.failed, report.refreshed),
        (1, 2, 0)
    );
    write(
        &root,
        "breast-level_annotations.csv",
        &VINDR_BREAST.replace("BI-RADS 4", "BI-RADS 5"),
    );
    let report = run_dataset_batch(&opts, &small_config()).unwrap();
    assert_eq!((report.skipped_done, report.refreshed), (1, 1));
    let rows = read_manifest(&out.join("32/manifest.csv")).unwrap();
    assert_eq!(
        (rows[1].birads.as_str(), rows[1].split.as_str()),
        ("5", "training")
    );
}

#[test]
fn rsna_through_the_dataset_entry_point_copies_the_phantom_lesions() {
    let root = scratch("rsna-phantom");
    mammo_phantom::generate(&mammo_phantom::PhantomConfig {
        out: root.clone(),
        patients: 3,
        seed: 7,
        prevalence: 0.7,
        size: mammo_phantom::SizePreset::Small,
        conspicuity: mammo_phantom::Conspicuity::High,
        density: Default::default(),
        jobs: 1,
        progress: false,
    })
    .unwrap();
    let ds = load_dataset(DatasetKind::Rsna, &root).unwrap();
    let phantom = mammo_dataset::lesion_boxes_by_image(&root.join("lesions.csv")).unwrap();
    assert_eq!(
        ds.lesions.len(),
        phantom.values().map(Vec::len).sum::<usize>()
    );
    assert!(
        ds.images
            .iter()
            .all(|r| r.dicom.is_file() && r.label.is_some())
    );
    let out = scratch("rsna-phantom-out");
    let report = run_dataset_batch(
        &DatasetBatchOptions {
            kind: DatasetKind::Rsna,
            root: root.clone(),
            out: out.clone(),
            jobs: 1,
            progress: false,
        },
        &small_config(),
    )
    .unwrap();
    assert_eq!((report.total, report.failed), (ds.images.len(), 0));
    let copied = mammo_dataset::lesion_boxes_by_image(&out.join("lesions.csv")).unwrap();
    assert_eq!(copied, phantom);
}

/// The loaders' lesions.csv starts with the phantom's columns, in its order, so every reader of
/// the phantom's file reads the datasets' (the two crates do not depend on each other).
#[test]
fn lesion_columns_extend_the_phantoms() {
    assert_eq!(
        LESION_CSV_COLUMNS[..mammo_phantom::LESION_COLUMNS.len()],
        mammo_phantom::LESION_COLUMNS
    );
}
