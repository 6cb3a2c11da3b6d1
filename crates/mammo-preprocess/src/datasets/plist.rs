//! Apple property lists in XML (what OsiriX writes, and so INbreast's `AllXML/*.xml`): a
//! small reader over `xml-rs` that builds the value tree. Only the XML form is read.

use std::path::{Path, PathBuf};

use xml::reader::{EventReader, XmlEvent};

/// A property-list value.
#[derive(Debug, Clone, PartialEq)]
pub enum Plist {
    /// Keys in file order (OsiriX never repeats one; a repeat is kept, the first wins).
    Dict(Vec<(String, Plist)>),
    Array(Vec<Plist>),
    String(String),
    Integer(i64),
    Real(f64),
    Bool(bool),
    /// `<date>` and `<data>` are kept as their text.
    Other(String),
}

impl Plist {
    /// The value of `key` in a dict.
    pub fn get(&self, key: &str) -> Option<&Plist> {
        match self {
            Plist::Dict(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Plist]> {
        match self {
            Plist::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Plist::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A property list that does not parse: the XML reader's error, or what is out of place.
#[derive(Debug, thiserror::Error)]
#[error("{}: {cause}", path.display())]
pub struct PlistError {
    pub path: PathBuf,
    #[source]
    pub cause: mammo_io::Cause,
}

/// Parses the XML form of a property list; `path` only names the source in errors.
pub fn parse_plist(bytes: &[u8], path: &Path) -> Result<Plist, PlistError> {
    let err = |cause: mammo_io::Cause| PlistError {
        path: path.into(),
        cause,
    };
    // A value being built: its element name and what it holds so far.
    enum Frame {
        Dict(Vec<(String, Plist)>, Option<String>),
        Array(Vec<Plist>),
        Text(String, String),
        Plist(Option<Plist>),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Plist> = None;
    let push_value = |stack: &mut Vec<Frame>, v: Plist| -> Result<(), String> {
        match stack.last_mut() {
            Some(Frame::Dict(kv, key)) => {
                let k = key
                    .take()
                    .ok_or_else(|| "a dict value without a <key> before it".to_string())?;
                kv.push((k, v));
                Ok(())
            }
            Some(Frame::Array(a)) => {
                a.push(v);
                Ok(())
            }
            Some(Frame::Plist(slot)) if slot.is_none() => {
                *slot = Some(v);
                Ok(())
            }
            _ => Err("a value where none belongs".into()),
        }
    };
    for ev in EventReader::new(bytes) {
        let ev = ev.map_err(|e| err(e.into()))?;
        match ev {
            XmlEvent::StartElement { name, .. } => {
                let n = name.local_name;
                stack.push(match n.as_str() {
                    "plist" => Frame::Plist(None),
                    "dict" => Frame::Dict(Vec::new(), None),
                    "array" => Frame::Array(Vec::new()),
                    "key" | "string" | "integer" | "real" | "date" | "data" | "true" | "false" => {
                        Frame::Text(n, String::new())
                    }
                    other => return Err(err(format!("unknown element <{other}>").into())),
                });
            }
            XmlEvent::Characters(s) | XmlEvent::CData(s) => match stack.last_mut() {
                Some(Frame::Text(_, t)) => t.push_str(&s),
                _ => return Err(err(format!("text {s:?} outside a value").into())),
            },
            XmlEvent::EndElement { .. } => {
                let frame = stack.pop().ok_or_else(|| err("unbalanced XML".into()))?;
                let value = match frame {
                    Frame::Plist(v) => {
                        root = v;
                        continue;
                    }
                    Frame::Dict(kv, None) => Plist::Dict(kv),
                    Frame::Dict(_, Some(k)) => {
                        return Err(err(format!("<key>{k}</key> without a value").into()));
                    }
                    Frame::Array(a) => Plist::Array(a),
                    Frame::Text(n, t) => {
                        let t = t.trim().to_string();
                        match n.as_str() {
                            "key" => match stack.last_mut() {
                                Some(Frame::Dict(_, key @ None)) => {
                                    *key = Some(t);
                                    continue;
                                }
                                _ => {
                                    return Err(err(format!("<key>{t}</key> out of place").into()));
                                }
                            },
                            "string" => Plist::String(t),
                            "integer" => Plist::Integer(
                                t.parse()
                                    .map_err(|_| err(format!("<integer>{t}</integer>").into()))?,
                            ),
                            "real" => Plist::Real(
                                t.parse()
                                    .map_err(|_| err(format!("<real>{t}</real>").into()))?,
                            ),
                            "true" => Plist::Bool(true),
                            "false" => Plist::Bool(false),
                            _ => Plist::Other(t),
                        }
                    }
                };
                if stack.is_empty() {
                    // A bare value without <plist> around it.
                    root = Some(value);
                } else {
                    push_value(&mut stack, value).map_err(|e| err(e.into()))?;
                }
            }
            _ => {}
        }
    }
    root.ok_or_else(|| err("no property list".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osirix_shape_parses() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>Images</key><array><dict>
<key>ImageIndex</key><integer>0</integer><key>NumberOfROIs</key><integer>1</integer>
<key>ROIs</key><array><dict><key>Area</key><real>1.5</real><key>Name</key><string>Mass</string>
<key>Point_px</key><array><string>(10.5, 20)</string></array><key>Flag</key><true/></dict></array>
</dict></array></dict></plist>"#;
        let p = parse_plist(xml, Path::new("x.xml")).unwrap();
        let image = &p.get("Images").unwrap().as_array().unwrap()[0];
        assert_eq!(image.get("ImageIndex"), Some(&Plist::Integer(0)));
        let roi = &image.get("ROIs").unwrap().as_array().unwrap()[0];
        assert_eq!(roi.get("Name").and_then(Plist::as_str), Some("Mass"));
        assert_eq!(roi.get("Area"), Some(&Plist::Real(1.5)));
        assert_eq!(roi.get("Flag"), Some(&Plist::Bool(true)));
        let e = parse_plist(
            b"<plist><dict><key>a</key></dict></plist>",
            Path::new("y.xml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("y.xml") && e.contains("without a value"), "{e}");
        assert!(parse_plist(b"<plist><dict>", Path::new("z.xml")).is_err());
    }
}
