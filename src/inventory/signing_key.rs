//! An apt source's signing key: an OpenPGP public key from a local file, armored or binary.
//! Validation checks that the file looks like one; the renderer installs it armored, so the
//! file hactl writes is text that diffs and reads back like every other file.

use base64::Engine as _;
use std::path::Path;

/// Larger than any public key (RabbitMQ's is a few KiB): the file is something else.
const MAX_LEN: u64 = 1 << 20;
const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// The key file as armored text, or why it is not an OpenPGP public key. `base_dir` is the
/// inventory's directory; the messages never quote the file's content.
pub fn read_armored(base_dir: &Path, file: &Path) -> Result<String, String> {
    let path = base_dir.join(file);
    let len = std::fs::metadata(&path)
        .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?
        .len();
    if len > MAX_LEN {
        return Err(format!(
            "{} is {len} bytes: too large for an OpenPGP public key",
            path.display()
        ));
    }
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?;
    armored(&bytes).map_err(|why| format!("{}: {why}", path.display()))
}

/// `bytes` as an armored public key block: kept as it is when armored, armored when binary.
fn armored(bytes: &[u8]) -> Result<String, String> {
    const EXPORT: &str = "export the public key with `gpg --export --armor KEYID`";
    if let Ok(text) = std::str::from_utf8(bytes)
        && text.contains("-----BEGIN PGP")
    {
        if text.contains("PRIVATE KEY BLOCK") {
            return Err(format!(
                "this is a private key, never needed by apt; {EXPORT}"
            ));
        }
        return match (text.find(BEGIN), text.find(END)) {
            (Some(b), Some(e)) if b < e => Ok(text.to_string()),
            _ => Err(format!("not an armored OpenPGP public key block; {EXPORT}")),
        };
    }
    match bytes.first().and_then(|&b| packet_tag(b)) {
        Some(6) => Ok(armor(bytes)),
        Some(5) => Err(format!(
            "this is a secret key, never needed by apt; {EXPORT}"
        )),
        _ => Err(format!(
            "not an OpenPGP public key (armored or binary); {EXPORT}"
        )),
    }
}

/// The tag of an OpenPGP packet from its first byte (RFC 4880 4.2), old or new format.
fn packet_tag(b: u8) -> Option<u8> {
    match b {
        _ if b & 0x80 == 0 => None,
        _ if b & 0x40 != 0 => Some(b & 0x3f),
        _ => Some((b >> 2) & 0x0f),
    }
}

/// ASCII armor (RFC 4880 6.2): base64 in 64-column lines and the CRC-24 checksum line.
fn armor(bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = b64.encode(bytes);
    let mut out = format!("{BEGIN}\n\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    let crc = crc24(bytes).to_be_bytes();
    out.push('=');
    out.push_str(&b64.encode(&crc[1..]));
    out.push('\n');
    out.push_str(END);
    out.push('\n');
    out
}

fn crc24(bytes: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &b in bytes {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc24_matches_the_rfc_check_value() {
        assert_eq!(crc24(b""), 0xB704CE);
        assert_eq!(crc24(b"123456789"), 0x21CF02);
    }

    #[test]
    fn binary_public_keys_are_armored_and_others_refused() {
        // An old-format public-key packet header (tag 6, two-byte length) is enough to tell.
        let key = [0x99, 0x00, 0x03, 0x04, 0x01, 0x02];
        let text = armored(&key).unwrap();
        assert!(
            text.starts_with(&format!("{BEGIN}\n\nmQADBAEC\n=")),
            "{text}"
        );
        assert!(text.ends_with(&format!("{END}\n")));
        assert_eq!(
            armored(text.as_bytes()).unwrap(),
            text,
            "armored stays as it is"
        );
        assert_eq!(packet_tag(0xC6), Some(6), "new format");
        assert!(armored(&[0x95, 0x01]).unwrap_err().contains("secret key"));
        assert!(armored(b"hello").unwrap_err().contains("not an OpenPGP"));
        let private =
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nx\n-----END PGP PRIVATE KEY BLOCK-----\n";
        assert!(
            armored(private.as_bytes())
                .unwrap_err()
                .contains("private key")
        );
    }
}
