//! Random bytes from the kernel: run markers, salts, the drill's names and password.

use std::io::Read;

/// `N` bytes read from `/dev/urandom`.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}
