//! Credentials out of URLs, wherever one is printed: the one helper every crate uses.

/// The URL with any password replaced, for messages and logs. Errs on the side of
/// hiding: it works on the text, so it also covers URLs that do not parse (a password
/// with a raw `/`, `?` or `@`), at the price of hiding a little more in rare cases.
///
/// ```
/// use trace_store_core::redact_url;
///
/// assert_eq!(redact_url("redis://user:hunter2@h:6379/0?prefix=a"), "redis://user:***@h:6379/0?prefix=a");
/// assert_eq!(redact_url("postgres://h/db?p%61ssword=x&sslmode=require"), "postgres://h/db?p%61ssword=***&sslmode=require");
/// assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The user info runs to the last `@`; a `user:password` keeps only the user.
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => rest.to_owned(),
        },
        None => rest.to_owned(),
    };
    // Passwords also travel as parameters (`redis+unix:///path?pass=..`,
    // `postgres://h/db?password=..`), their names possibly percent-encoded.
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if is_secret_param(key) => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

/// A parameter whose value is a credential: its decoded name mentions a password,
/// secret or token.
fn is_secret_param(key: &str) -> bool {
    let key = percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    ["pass", "secret", "token", "auth", "key"]
        .iter()
        .any(|word| key.contains(word))
}
