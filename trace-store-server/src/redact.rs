//! Store URLs are shown to clients and in logs with their secrets masked.

/// `url` with any password (and a `password`/`token`-like query value) replaced by
/// `***`. Text that is not a URL is returned as is.
pub(crate) fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return text.to_owned();
    };
    let has_password = url.password().is_some();
    if has_password && url.set_password(Some("***")).is_err() {
        return "<store url hidden>".to_owned();
    }
    let secret_query = url.query_pairs().any(|(key, _)| is_secret_key(&key));
    if !has_password && !secret_query {
        // Re-serialising would normalise the text the user typed for nothing.
        return text.to_owned();
    }
    if secret_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if is_secret_key(&key) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "passwd", "token", "secret", "key"]
        .iter()
        .any(|secret| key.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_secret_parameters_are_masked() {
        assert_eq!(
            redact_url("redis://user:hunter2@127.0.0.1:6379/0?prefix=a"),
            "redis://user:***@127.0.0.1:6379/0?prefix=a"
        );
        assert_eq!(
            redact_url("postgres://h/db?password=x&sslmode=require"),
            "postgres://h/db?password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite://traces.db"), "sqlite://traces.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert!(!redact_url("redis://:hunter2@h").contains("hunter2"));
    }
}
