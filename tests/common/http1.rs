//! Just enough HTTP/1.1 for the test servers: read one message, find a
//! header. Bodies come with `content-length` or chunked; a chunked body is
//! returned whole, its head saying `content-length` instead.

use tokio::io::{AsyncRead, AsyncReadExt};

/// One message as (head, body); `None` when the peer closed.
pub async fn read_message<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut rest = data.split_off(head_end);
    if header(&head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(pos) = rest.windows(2).position(|w| w == b"\r\n") {
                    break pos;
                }
                let n = stream.read(&mut buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                rest.extend_from_slice(&buf[..n]);
            };
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..line_end]).trim(), 16).ok()?;
            while rest.len() < line_end + 2 + size + 2 {
                let n = stream.read(&mut buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                rest.extend_from_slice(&buf[..n]);
            }
            body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest.drain(..line_end + 2 + size + 2);
            if size == 0 {
                return Some((with_length(&head, body.len()), body));
            }
        }
    }
    let length: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while rest.len() < length {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        rest.extend_from_slice(&buf[..n]);
    }
    rest.truncate(length);
    Some((head, rest))
}

/// `head` with `transfer-encoding` replaced by a `content-length` of `length`.
fn with_length(head: &str, length: usize) -> String {
    let mut lines: Vec<&str> = head.trim_end_matches("\r\n").split("\r\n").collect();
    lines.retain(|line| !line.split(':').next().is_some_and(|k| k.trim().eq_ignore_ascii_case("transfer-encoding")));
    let length = format!("content-length: {length}");
    lines.push(&length);
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).take_while(|l| !l.is_empty()).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// Head and body back into bytes, as they would cross the wire.
pub fn to_bytes(head: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = head.as_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}
