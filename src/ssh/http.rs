//! HTTP requests to a port of the host itself, through a `direct-tcpip` channel of the open
//! connection: no remote process is started, so nothing (a password in particular) appears in
//! any argv, and no new TCP connection from hactl's machine is needed.

use super::SshError;
use super::session::{Connection, secs};
use crate::secret::Secret;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response read (a big cluster's definitions stay far below).
const MAX_RESPONSE: u64 = 256 << 20;

/// What an HTTP server answered.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One request: `method path` (already percent-encoded), with a JSON body or none.
pub struct HttpRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub json: Option<&'a str>,
}

impl Connection {
    /// `req` on `address:port` as the host sees it, with HTTP basic authentication, bounded by
    /// the command timeout. HTTP/1.0, so the response is neither chunked nor kept alive: it
    /// ends when the server closes.
    pub async fn http(
        &self,
        address: &str,
        port: u16,
        req: &HttpRequest<'_>,
        user: &str,
        password: &Secret,
    ) -> Result<HttpResponse, SshError> {
        let HttpRequest { method, path, json } = *req;
        let target = self.target();
        let failed = |reason: String| SshError::Channel {
            host: target.host.clone(),
            reason: format!("{method} {path} on {address} port {port}: {reason}"),
        };
        let _permit = self.channel_slot().await?;
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose()));
        let host = crate::render::host_port(address, i64::from(port));
        let mut request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Basic {credentials}\r\n\
             Accept: application/json\r\n"
        );
        if let Some(body) = json {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        let work = async {
            let open = self.inner.handle.channel_open_direct_tcpip(
                address,
                u32::from(port),
                "127.0.0.1",
                0,
            );
            // Nothing listening (or sshd forbidding forwarding) answers at once; a wait this
            // long means the connection is unwell.
            let channel = tokio::time::timeout(target.connect_timeout, open)
                .await
                .map_err(|_| failed("no channel within the connect timeout".into()))?
                .map_err(|e| failed(format!("cannot open a channel: {e}")))?;
            let mut stream = channel.into_stream();
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| failed(format!("cannot send: {e}")))?;
            let mut raw = Vec::new();
            (&mut stream)
                .take(MAX_RESPONSE)
                .read_to_end(&mut raw)
                .await
                .map_err(|e| failed(format!("cannot read: {e}")))?;
            parse(&raw).map_err(failed)
        };
        tokio::time::timeout(target.command_timeout, work)
            .await
            .map_err(|_| SshError::Timeout {
                host: target.host.clone(),
                what: format!(
                    "{method} {path} on {address} port {port} did not finish within {} s",
                    secs(target.command_timeout)
                ),
            })?
    }
}

/// Status code and body of an HTTP/1.x response read to its end.
fn parse(raw: &[u8]) -> Result<HttpResponse, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| "no HTTP response (is anything listening there?)".to_string())?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = head
        .lines()
        .next()
        .filter(|l| l.starts_with("HTTP/1."))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP status line: {:?}", head.lines().next()))?;
    if head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:"))
    {
        return Err("unexpected transfer-encoding in an HTTP/1.0 response".into());
    }
    Ok(HttpResponse {
        status,
        body: raw[end + 4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_responses() {
        let r = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n[]").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"[]"[..]));
        let r = parse(b"HTTP/1.1 401 Unauthorized\r\n\r\n").unwrap();
        assert_eq!(r.status, 401);
        assert!(parse(b"").is_err());
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }
}
