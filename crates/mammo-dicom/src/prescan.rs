//! A walk over a DICOM stream's element headers, before the real parser sees it, refusing
//! value lengths that exceed what is left of the stream.
//!
//! dicom-rs 0.10 allocates (and zero-fills) a value's declared length before reading it, so
//! a few hundred bytes claiming a 4 GB element cost 4 GB of memory, as libFuzzer found
//! (`fuzz/regressions/dicom/`). GDCM fixed the same class of bug as CVE-2026-3650. The walk
//! descends into sequences and items (defined or undefined length) and encapsulated pixel
//! data, and limits nesting depth, which also keeps a deeply nested file from exhausting the
//! parser's stack.
//!
//! It is deliberately tolerant: anything it cannot follow (a truncated header, a missing
//! delimiter) ends the walk without an error and is left to the parser, which reports it.
//!
//! A deflated data set (Deflated Explicit VR Little Endian) is first inflated into a counter
//! that keeps nothing: one that would inflate beyond a limit (a decompression bomb: a few
//! hundred kilobytes can inflate to gigabytes, which the parser would hold in memory) is
//! refused; otherwise it is inflated again into memory and walked like any other.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;

/// Deeper nesting than this is refused (real files rarely exceed 5 levels).
const MAX_DEPTH: usize = 64;

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
}

/// Why the walk stopped early.
enum Stop {
    /// A length or depth the parser must not be given.
    Refuse(String),
    /// Something the walk cannot follow; the parser will judge it.
    Lost,
}

type Walk<T> = Result<T, Stop>;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    enc: Encoding,
}

struct Header {
    tag: Tag,
    vr: Option<[u8; 2]>,
    len: u32,
    at: usize,
}

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Walk<[u8; N]> {
        let b = self
            .bytes
            .get(self.pos..self.pos + N)
            .ok_or(Stop::Lost)?
            .try_into()
            .map_err(|_| Stop::Lost)?;
        self.pos += N;
        Ok(b)
    }

    fn u16(&mut self) -> Walk<u16> {
        let b = self.take::<2>()?;
        Ok(match self.enc {
            Encoding::ExplicitBe => u16::from_be_bytes(b),
            _ => u16::from_le_bytes(b),
        })
    }

    fn u32(&mut self) -> Walk<u32> {
        let b = self.take::<4>()?;
        Ok(match self.enc {
            Encoding::ExplicitBe => u32::from_be_bytes(b),
            _ => u32::from_le_bytes(b),
        })
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn header(&mut self) -> Walk<Header> {
        let at = self.pos;
        let tag = Tag(self.u16()?, self.u16()?);
        if tag.group() == 0xFFFE || self.enc == Encoding::ImplicitLe {
            let len = self.u32()?;
            return Ok(Header {
                tag,
                vr: None,
                len,
                at,
            });
        }
        let vr = self.take::<2>()?;
        // PS3.5 7.1.2: these VRs have a 16-bit length; every other one, and a VR the
        // parser does not know (read as UN), has 2 reserved bytes and a 32-bit length.
        let short = matches!(
            &vr,
            b"AE"
                | b"AS"
                | b"AT"
                | b"CS"
                | b"DA"
                | b"DS"
                | b"DT"
                | b"FL"
                | b"FD"
                | b"IS"
                | b"LO"
                | b"LT"
                | b"PN"
                | b"SH"
                | b"SL"
                | b"SS"
                | b"ST"
                | b"TM"
                | b"UI"
                | b"UL"
                | b"US"
        );
        let len = if short {
            self.u16()? as u32
        } else {
            self.take::<2>()?;
            self.u32()?
        };
        Ok(Header {
            tag,
            vr: Some(vr),
            len,
            at,
        })
    }

    /// A defined length must fit in what is left of the stream.
    fn check(&self, h: &Header) -> Walk<()> {
        if h.len != UNDEFINED && h.len as usize > self.remaining() {
            return Err(Stop::Refuse(format!(
                "element ({:04X},{:04X}) at byte {} claims {} bytes, only {} remain in the file",
                h.tag.group(),
                h.tag.element(),
                h.at,
                h.len,
                self.remaining()
            )));
        }
        Ok(())
    }

    fn skip(&mut self, len: u32) {
        self.pos += len as usize;
    }

    fn is_sequence(&self, h: &Header) -> bool {
        match h.vr {
            Some(vr) => &vr == b"SQ",
            None => StandardDataDictionary
                .by_tag(h.tag)
                .is_some_and(|e| e.vr() == VirtualVr::Exact(VR::SQ)),
        }
    }

    /// Elements until `end` (a byte offset) or, inside an undefined-length item, its
    /// delimiter.
    fn dataset(&mut self, end: Option<usize>, depth: usize) -> Walk<()> {
        if depth > MAX_DEPTH {
            return Err(Stop::Refuse(format!(
                "sequences nested deeper than {MAX_DEPTH} levels at byte {}",
                self.pos
            )));
        }
        loop {
            if end.is_some_and(|e| self.pos >= e) || self.remaining() == 0 {
                return Ok(());
            }
            let h = self.header()?;
            self.check(&h)?;
            if h.tag == ITEM_END {
                return Ok(());
            }
            if h.len == UNDEFINED {
                if h.tag == PIXEL_DATA {
                    self.fragments()?;
                } else {
                    // A sequence (SQ, or UN / implicit VR of undefined length).
                    self.items(None, depth + 1)?;
                }
            } else if self.is_sequence(&h) {
                // Like the parser, go on at the declared end, wherever the last element
                // inside ended.
                let stop = self.pos + h.len as usize;
                self.items(Some(stop), depth + 1)?;
                self.pos = stop;
            } else {
                // Like the parser, which reads binary numbers of a value whole and goes on
                // after the last one: a 10-byte AT value is two tags and 8 bytes.
                let width = self.number_width(&h);
                self.skip(h.len - h.len % width);
            }
        }
    }

    /// Bytes per number of a binary numeric VR (1 for every other VR).
    fn number_width(&self, h: &Header) -> u32 {
        let vr = match h.vr {
            Some(vr) => VR::from_binary(vr),
            None => match StandardDataDictionary.by_tag(h.tag).map(|e| e.vr()) {
                Some(VirtualVr::Exact(vr)) => Some(vr),
                Some(VirtualVr::Xs) => Some(VR::US),
                _ => None,
            },
        };
        match vr {
            Some(VR::US | VR::SS | VR::OW) => 2,
            Some(VR::AT | VR::FL | VR::OF | VR::SL | VR::UL | VR::OL) => 4,
            Some(VR::FD | VR::OD | VR::SV | VR::UV | VR::OV) => 8,
            _ => 1,
        }
    }

    /// Items of a sequence until `end` or the sequence delimiter.
    fn items(&mut self, end: Option<usize>, depth: usize) -> Walk<()> {
        loop {
            if end.is_some_and(|e| self.pos >= e) {
                return Ok(());
            }
            let h = self.header()?;
            self.check(&h)?;
            match h.tag {
                SEQUENCE_END => return Ok(()),
                ITEM if h.len == UNDEFINED => self.dataset(None, depth)?,
                ITEM => {
                    let stop = self.pos + h.len as usize;
                    self.dataset(Some(stop), depth)?;
                    self.pos = stop;
                }
                _ => return Err(Stop::Lost),
            }
        }
    }

    /// The offset table and fragments of encapsulated pixel data.
    fn fragments(&mut self) -> Walk<()> {
        loop {
            let h = self.header()?;
            self.check(&h)?;
            match h.tag {
                SEQUENCE_END => return Ok(()),
                ITEM if h.len != UNDEFINED => self.skip(h.len),
                _ => return Err(Stop::Lost),
            }
        }
    }
}

/// Walks a Part 10 stream (preamble optional) and refuses a value length larger than the
/// rest of the stream, nesting deeper than 64 levels, or a deflated data set that inflates
/// to more than `max_inflated` bytes.
pub(crate) fn check_lengths(bytes: &[u8], max_inflated: u64) -> Result<(), String> {
    let start = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if bytes.get(..4) == Some(b"DICM") {
        4
    } else {
        return Ok(());
    };
    let mut c = Cursor {
        bytes,
        pos: start,
        enc: Encoding::ExplicitLe,
    };
    match walk(&mut c, max_inflated) {
        Ok(()) | Err(Stop::Lost) => Ok(()),
        Err(Stop::Refuse(reason)) => Err(reason),
    }
}

fn walk(c: &mut Cursor<'_>, max_inflated: u64) -> Walk<()> {
    // File meta group: explicit VR little endian. Where it opens with its group length, as
    // the parser requires, it ends where that length says, whatever the groups of the
    // elements in it (the parser reads them all as meta elements); else at the first element
    // outside group 0002.
    let first = c.pos;
    let mut syntax = String::new();
    let mut group_end: Option<usize> = None;
    loop {
        if group_end.is_some_and(|end| c.pos >= end) {
            break;
        }
        let at = c.pos;
        let Ok(h) = c.header() else {
            return Ok(());
        };
        if group_end.is_none() && h.tag.group() != 0x0002 {
            c.pos = at;
            break;
        }
        c.check(&h)?;
        if h.len == UNDEFINED {
            // The parser refuses an undefined length in the meta group.
            return Ok(());
        }
        if h.tag == Tag(0x0002, 0x0000) && h.len == 4 && at == first {
            let v = &c.bytes[c.pos..c.pos + 4];
            let len = u32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            group_end = Some((c.pos + 4).saturating_add(len as usize));
        }
        if h.tag == Tag(0x0002, 0x0010) {
            let v = &c.bytes[c.pos..c.pos + h.len as usize];
            syntax = String::from_utf8_lossy(v)
                .trim_end_matches(['\0', ' '])
                .to_owned();
        }
        c.skip(h.len);
    }
    c.enc = match syntax.as_str() {
        "1.2.840.10008.1.2" => Encoding::ImplicitLe,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitBe,
        "1.2.840.10008.1.2.1.99" => {
            let inflated = inflate(&c.bytes[c.pos..], max_inflated)?;
            let mut d = Cursor {
                bytes: &inflated,
                pos: 0,
                enc: Encoding::ExplicitLe,
            };
            return d.dataset(None, 0);
        }
        _ => Encoding::ExplicitLe,
    };
    c.dataset(None, 0)
}

/// Inflates a deflated data set (PS3.5 A.5: raw RFC 1951 deflate, no zlib header), refusing
/// one that inflates to more than `limit` bytes before holding any of it. A stream that breaks
/// off (truncated or corrupt) gives what it inflated up to the break, which is what the parser
/// will read before it fails: a length in it that claims more than that is refused like any
/// other.
fn inflate(deflated: &[u8], limit: u64) -> Walk<Vec<u8>> {
    let size = inflate_into(deflated, limit, |_| {});
    if size > limit {
        return Err(Stop::Refuse(format!(
            "the deflated data set ({} bytes) inflates to more than {limit} bytes, the limit \
             for this frame size (a decompression bomb?)",
            deflated.len()
        )));
    }
    let mut inflated = Vec::with_capacity(size as usize);
    inflate_into(deflated, size, |chunk| inflated.extend_from_slice(chunk));
    Ok(inflated)
}

/// Inflates `deflated` chunk by chunk into `sink`, stopping once more than `limit` bytes came
/// out, at the end of the stream, or where it breaks off; returns how many bytes it gave
/// `sink`. Where the stream breaks off, the bytes inflated before the break are kept: the
/// low-level decoder counts them even in the call that fails (`read` would drop that call's
/// output, and the parser may have read some of it).
fn inflate_into(deflated: &[u8], limit: u64, mut sink: impl FnMut(&[u8])) -> u64 {
    let mut decoder = flate2::Decompress::new(false);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let (in_before, out_before) = (decoder.total_in(), decoder.total_out());
        let rest = deflated.get(in_before as usize..).unwrap_or_default();
        let status = decoder.decompress(rest, &mut buf, flate2::FlushDecompress::None);
        let n = (decoder.total_out() - out_before) as usize;
        sink(&buf[..n]);
        let total = decoder.total_out();
        let stuck = n == 0 && decoder.total_in() == in_before;
        match status {
            _ if total > limit => return total,
            Ok(flate2::Status::StreamEnd) | Err(_) => return total,
            Ok(_) if stuck => return total,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1 << 20;

    /// An explicit VR little endian stream: meta group with the transfer syntax, then `body`.
    fn stream(body: &[u8]) -> Vec<u8> {
        stream_with(b"1.2.840.10008.1.2.1\0", body)
    }

    /// A deflated explicit VR little endian stream whose data set, inflated, is `body`.
    fn deflated(body: &[u8]) -> Vec<u8> {
        stream_with(b"1.2.840.10008.1.2.1.99", &deflate(body))
    }

    /// `bytes` as raw deflate (no zlib header), as PS3.5 A.5 stores a data set.
    fn deflate(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn stream_with(ts: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 128];
        v.extend_from_slice(b"DICM");
        v.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'I']);
        v.extend_from_slice(&(ts.len() as u16).to_le_bytes());
        v.extend_from_slice(ts);
        v.extend_from_slice(body);
        v
    }

    fn ob(tag: (u16, u16), len: u32, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.0.to_le_bytes());
        v.extend_from_slice(&tag.1.to_le_bytes());
        v.extend_from_slice(b"OB\0\0");
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(value);
        v
    }

    fn sq_undefined(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![0x08, 0x00, 0x15, 0x11];
        v.extend_from_slice(b"SQ\0\0");
        v.extend_from_slice(&UNDEFINED.to_le_bytes());
        for body in items {
            v.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            v.extend_from_slice(&UNDEFINED.to_le_bytes());
            v.extend_from_slice(body);
            v.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        }
        v.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn honest_lengths_pass() {
        let mut body = ob((0x0009, 0x0010), 4, b"abcd");
        body.extend(sq_undefined(&[ob((0x0009, 0x0011), 2, b"xy")]));
        assert_eq!(check_lengths(&stream(&body), LIMIT), Ok(()));
    }

    #[test]
    fn a_length_beyond_the_file_is_refused_even_inside_a_sequence() {
        let top = ob((0x0009, 0x0010), 0xFFFF_0000, b"abcd");
        let err = check_lengths(&stream(&top), LIMIT).unwrap_err();
        assert!(
            err.contains("(0009,0010)") && err.contains("claims 4294901760 bytes"),
            "{err}"
        );
        let nested = sq_undefined(&[ob((0x0009, 0x0011), 0x7FFF_FFFF, b"xy")]);
        let err = check_lengths(&stream(&nested), LIMIT).unwrap_err();
        assert!(err.contains("(0009,0011)"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut body = ob((0x0009, 0x0010), 2, b"ab");
        for _ in 0..100 {
            body = sq_undefined(&[body]);
        }
        let err = check_lengths(&stream(&body), LIMIT).unwrap_err();
        assert!(err.contains("nested deeper than 64"), "{err}");
    }

    #[test]
    fn what_the_walk_cannot_follow_is_left_to_the_parser() {
        assert_eq!(check_lengths(b"not dicom", LIMIT), Ok(()));
        let mut s = stream(&ob((0x0009, 0x0010), 4, b"abcd"));
        s.truncate(s.len() - 2);
        // The element's length exceeds the rest (a cut file): refused, not lost.
        assert!(check_lengths(&s, LIMIT).is_err());
        let mut s = stream(&[]);
        s.extend_from_slice(&[0x09, 0x00]);
        assert_eq!(check_lengths(&s, LIMIT), Ok(()));
    }

    #[test]
    fn a_deflated_data_set_is_walked_after_inflating() {
        let honest = ob((0x0009, 0x0010), 4, b"abcd");
        assert_eq!(check_lengths(&deflated(&honest), LIMIT), Ok(()));
        let lying = ob((0x0009, 0x0010), 0x7FFF_0000, b"abcd");
        let s = deflated(&lying);
        let err = check_lengths(&s, LIMIT).unwrap_err();
        assert!(
            err.contains("(0009,0010)") && err.contains("claims"),
            "{err}"
        );
        // Not valid deflate: the parser judges it.
        let broken = stream_with(b"1.2.840.10008.1.2.1.99", &[0xFF; 16]);
        assert_eq!(check_lengths(&broken, LIMIT), Ok(()));
    }

    #[test]
    fn a_deflated_stream_that_breaks_off_is_walked_up_to_the_break() {
        // Found by fuzzing: a cut deflate stream whose inflated start holds an OB claiming
        // 2.9 GB, which the parser allocated before reading. Incompressible filler keeps the
        // element's header in the blocks before the cut.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let filler: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let lying = ob((0x0009, 0x0010), 0xAE00_0000, &filler);
        let mut s = deflated(&lying);
        s.truncate(s.len() - 100_000);
        let err = check_lengths(&s, LIMIT).unwrap_err();
        assert!(
            err.contains("(0009,0010)") && err.contains("claims"),
            "{err}"
        );
        // An honest element cut the same way is refused too, as in a cut native file.
        let honest = ob((0x0009, 0x0010), filler.len() as u32, &filler);
        let mut s = deflated(&honest);
        s.truncate(s.len() - 100_000);
        assert!(
            check_lengths(&s, LIMIT).is_err(),
            "the cut element claims more than is left"
        );
    }

    #[test]
    fn the_meta_group_ends_where_its_group_length_says() {
        // Found by fuzzing: an element of another group inside the meta group's length. The
        // parser reads it as a meta element and the data set from the end of the group; so
        // must the walk, or it checks the wrong bytes (here: inflates from the wrong place).
        let data = deflate(&ob((0x0009, 0x0010), 0x7FFF_0000, b"abcd"));
        let ts = b"1.2.840.10008.1.2.1.99";
        let mut meta = vec![0x02, 0x00, 0x10, 0x00, b'U', b'I'];
        meta.extend_from_slice(&(ts.len() as u16).to_le_bytes());
        meta.extend_from_slice(ts);
        // (08FF,0013) SH, 4 bytes, counted in the group length.
        meta.extend_from_slice(&[
            0xFF, 0x08, 0x13, 0x00, b'S', b'H', 4, 0, b'a', b'b', b'c', b'd',
        ]);
        let mut v = vec![0u8; 128];
        v.extend_from_slice(b"DICM");
        v.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        v.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        v.extend_from_slice(&meta);
        v.extend_from_slice(&data);
        let err = check_lengths(&v, LIMIT).unwrap_err();
        assert!(
            err.contains("(0009,0010)") && err.contains("claims"),
            "{err}"
        );
    }

    #[test]
    fn an_undefined_length_in_the_meta_group_is_left_to_the_parser() {
        // Found by fuzzing: (0002,0010) with length FFFFFFFF indexed past the end.
        let mut v = vec![0u8; 128];
        v.extend_from_slice(b"DICM");
        v.extend_from_slice(&[0x02, 0x00, 0x10, 0x00, b'U', b'N', 0, 0]);
        v.extend_from_slice(&UNDEFINED.to_le_bytes());
        v.extend_from_slice(b"1.2.840.10008.1.2.1\0");
        assert_eq!(check_lengths(&v, LIMIT), Ok(()));
    }

    #[test]
    fn a_binary_value_of_a_partial_number_is_skipped_as_the_parser_reads_it() {
        // Found by fuzzing: a 10-byte AT value, of which the parser reads two tags (8 bytes)
        // and takes the next header from the last 2, here one claiming 4 GB.
        let mut body = vec![0x08, 0x00, 0x05, 0x00, b'A', b'T', 10, 0];
        body.extend_from_slice(b"ISO_IR \xff");
        body.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, b'O', b'B', 0, 0]);
        body.extend_from_slice(&[0x07, 0x07, 0xFF, 0xFF]);
        let err = check_lengths(&stream(&body), LIMIT).unwrap_err();
        assert!(
            err.contains("(FFFF,FFFF)") && err.contains("claims"),
            "{err}"
        );
    }

    #[test]
    fn a_deflate_bomb_is_refused_before_it_is_held() {
        // 64 MiB of zeros in an honest element deflates to about 64 KiB.
        let size = 64u32 << 20;
        let mut body = ob((0x0009, 0x1010), size, &[]);
        body.resize(body.len() + size as usize, 0);
        let s = deflated(&body);
        assert!(s.len() < 1 << 20, "{}", s.len());
        let err = check_lengths(&s, LIMIT).unwrap_err();
        assert!(err.contains("inflates to more than 1048576 bytes"), "{err}");
        // Under a limit that allows it, it is a valid stream.
        assert_eq!(check_lengths(&s, 128 << 20), Ok(()));
    }
}
