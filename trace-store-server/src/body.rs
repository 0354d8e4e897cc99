//! Reading request bodies without trusting the client's sizes.

use std::io::Read;
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::{ApiError, ApiResult, Kind};

/// The whole body, refused with 413 as soon as it passes `limit` bytes, whatever the
/// `Content-Length` header claims, and with 408 if it has not all arrived within
/// `timeout` (a client trickling bytes must not hold the request open for ever).
pub(crate) async fn read_limited(body: Body, limit: usize, timeout: Duration) -> ApiResult<Bytes> {
    let Ok(read) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        return Err(ApiError::new(
            Kind::RequestTimeout,
            format!(
                "the request body did not arrive within {}",
                humantime::format_duration(timeout)
            ),
        ));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::too_large(limit))
        }
        Err(error) => Err(ApiError::invalid(format!(
            "the request body could not be read: {error}"
        ))),
    }
}

/// Decompresses a gzip body, refusing with 413 once the output passes `limit`
/// bytes, so a small bomb cannot expand into memory.
pub(crate) fn gunzip_limited(compressed: &[u8], limit: usize) -> ApiResult<Vec<u8>> {
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    (&mut decoder)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|error| ApiError::invalid(format!("the gzip body is malformed: {error}")))?;
    if out.len() > limit {
        return Err(ApiError::new(
            Kind::PayloadTooLarge,
            format!(
                "the decompressed request body is larger than the server's limit of {limit} bytes"
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_output_is_capped() {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 4096);
        let error = gunzip_limited(&bomb, 1000).unwrap_err();
        assert_eq!(error.kind, Kind::PayloadTooLarge);
        assert_eq!(gunzip_limited(&bomb, 1 << 20).unwrap().len(), 1 << 20);
        assert!(gunzip_limited(b"not gzip", 1000).is_err());
    }
}
