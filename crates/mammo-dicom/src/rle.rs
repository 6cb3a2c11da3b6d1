//! RLE Lossless (PS3.5 Annex G), decoded here rather than by dicom-pixeldata, whose 0.10
//! decoder panics on malformed segments (found by fuzzing: `fuzz/regressions/dicom/`).
//! Every offset and length is checked; a bad frame is an error that says what is wrong.

/// Decodes one RLE frame into native little-endian samples, interleaved (planar
/// configuration 0), as [`crate::decode`]'s unpacking expects.
pub(crate) fn decode_frame(
    fragment: &[u8],
    rows: u32,
    columns: u32,
    samples: u16,
    bits_allocated: u16,
) -> Result<Vec<u8>, String> {
    if !matches!(bits_allocated, 8 | 16 | 32) {
        return Err(format!(
            "RLE with Bits Allocated {bits_allocated} (8, 16 or 32 are defined)"
        ));
    }
    let bytes_per = bits_allocated as usize / 8;
    let samples = samples.max(1) as usize;
    let pixels = rows as usize * columns as usize;
    let want = samples * bytes_per;
    if fragment.len() < 64 {
        return Err(format!(
            "RLE frame of {} bytes is shorter than its 64-byte header",
            fragment.len()
        ));
    }
    let word = |i: usize| u32::from_le_bytes(fragment[4 * i..4 * i + 4].try_into().unwrap());
    let count = word(0) as usize;
    if count != want {
        return Err(format!(
            "RLE header lists {count} segments; {samples} sample(s) of {bits_allocated} bits \
             need {want}"
        ));
    }
    let mut offsets: Vec<usize> = (1..=count).map(|i| word(i) as usize).collect();
    offsets.push(fragment.len());
    let mut out = vec![0u8; pixels * want];
    for k in 0..count {
        let (start, end) = (offsets[k], offsets[k + 1]);
        if start < 64 || start > end || end > fragment.len() {
            return Err(format!(
                "RLE segment {k} spans bytes {start}..{end} of a {}-byte frame",
                fragment.len()
            ));
        }
        let segment = unpack_bits(&fragment[start..end], pixels);
        if segment.len() < pixels {
            return Err(format!(
                "RLE segment {k} decodes to {} bytes; Rows x Columns is {pixels}",
                segment.len()
            ));
        }
        // Segments run sample by sample, most significant byte first.
        let (sample, byte) = (k / bytes_per, bytes_per - 1 - k % bytes_per);
        let stride = want;
        let offset = sample * bytes_per + byte;
        for (p, &v) in segment.iter().take(pixels).enumerate() {
            out[p * stride + offset] = v;
        }
    }
    Ok(out)
}

/// PackBits: a header byte n < 128 copies the next n + 1 bytes, n > 128 repeats the next
/// byte 257 - n times, 128 does nothing. Stops once `limit` bytes are out (a segment may be
/// padded past its end) or the input runs out.
fn unpack_bits(mut input: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    while let Some((&n, rest)) = input.split_first() {
        if out.len() >= limit {
            break;
        }
        input = rest;
        match n {
            0..=127 => {
                let take = (n as usize + 1).min(input.len());
                out.extend_from_slice(&input[..take]);
                input = &input[take..];
            }
            128 => {}
            _ => {
                let Some((&v, rest)) = input.split_first() else {
                    break;
                };
                input = rest;
                out.extend(std::iter::repeat_n(v, 257 - n as usize));
            }
        }
    }
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(segments: &[&[u8]]) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
        let mut body = Vec::new();
        for (i, s) in segments.iter().enumerate() {
            let at = (64 + body.len()) as u32;
            header[4 + 4 * i..8 + 4 * i].copy_from_slice(&at.to_le_bytes());
            body.extend_from_slice(s);
        }
        header.extend(body);
        header
    }

    #[test]
    fn packbits_literals_runs_and_no_ops() {
        assert_eq!(
            unpack_bits(&[2, 1, 2, 3, 254, 9, 128, 0, 7], 100),
            [1, 2, 3, 9, 9, 9, 7]
        );
        assert_eq!(unpack_bits(&[255, 5, 0], 4), [5, 5]);
        assert_eq!(unpack_bits(&[130, 1], 4), [1, 1, 1, 1]);
    }

    #[test]
    fn sixteen_bit_segments_are_msb_first() {
        // 2x1 pixels: 0x0102, 0x0304.
        let f = frame(&[&[1, 1, 3], &[1, 2, 4]]);
        assert_eq!(decode_frame(&f, 1, 2, 1, 16).unwrap(), [2, 1, 4, 3]);
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        assert!(
            decode_frame(&[0; 10], 1, 1, 1, 8)
                .unwrap_err()
                .contains("64-byte header")
        );
        let f = frame(&[&[0, 7]]);
        assert!(
            decode_frame(&f, 1, 1, 1, 16)
                .unwrap_err()
                .contains("1 segments")
        );
        assert!(
            decode_frame(&f, 2, 2, 1, 8)
                .unwrap_err()
                .contains("decodes to 1 bytes")
        );
        let mut bad = frame(&[&[0, 7]]);
        bad[4..8].copy_from_slice(&9999u32.to_le_bytes());
        assert!(
            decode_frame(&bad, 1, 1, 1, 8)
                .unwrap_err()
                .contains("spans bytes")
        );
        assert_eq!(decode_frame(&f, 1, 1, 1, 8).unwrap(), [7]);
    }
}
