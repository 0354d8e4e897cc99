//! What of a run's content is stored: everything, metadata only, or redacted content.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use trace_store_core::{Step, Trace};

/// What the recorder keeps of prompts, completions, tool arguments and results.
///
/// Applied before anything is stored or shown: to what [`Recorder::record`],
/// [`Recorder::merge`] and the [`Run`] guards record, on the agent's side before it is
/// queued; to `TraceLayer` spans on the writer thread, when it turns their records into
/// steps (so the agent's thread does no redaction), before the store or a live update
/// sees them.
///
/// [`Recorder::record`]: crate::Recorder::record
/// [`Recorder::merge`]: crate::Recorder::merge
/// [`Run`]: crate::Run
#[derive(Default)]
#[non_exhaustive]
pub enum Capture {
    /// Keep everything (the default).
    #[default]
    Full,
    /// Keep no step input or output, and none of the attributes that carry content
    /// (system instructions, prompts, completions, messages, tool arguments and
    /// results); timings, models, tokens, costs and errors stay.
    MetadataOnly,
    /// Pass every stored JSON value (step input, output, attributes, error messages,
    /// run metadata) through a redactor.
    Redact(Box<dyn Redactor>),
}

impl Capture {
    /// `Redact` with the [`SecretRedactor`]: masks values under secret-looking keys and
    /// secret shapes inside strings.
    pub fn redact_secrets() -> Capture {
        Capture::Redact(Box::new(SecretRedactor))
    }

    /// Applies the policy to one step.
    pub fn apply_to_step(&self, step: &mut Step) {
        match self {
            Capture::Full => {}
            Capture::MetadataOnly => {
                step.input = None;
                step.output = None;
                step.attributes.retain(|key, _| !is_content_attribute(key));
            }
            Capture::Redact(redactor) => {
                for value in [&mut step.input, &mut step.output].into_iter().flatten() {
                    redactor.redact(value);
                }
                redact_map(redactor.as_ref(), &mut step.attributes);
                if let Some(error) = &mut step.error {
                    error.message = redactor.redact_str(&error.message);
                }
            }
        }
    }

    /// Applies the policy to a trace's header (metadata, run error) and every step.
    pub fn apply_to_trace(&self, trace: &mut Trace) {
        self.apply_to_trace_header(trace);
        if !matches!(self, Capture::Full) {
            trace
                .steps
                .iter_mut()
                .for_each(|step| self.apply_to_step(step));
        }
    }
}

impl Capture {
    /// Applies the policy to the run-level fields only (metadata, run error).
    pub(crate) fn apply_to_trace_header(&self, trace: &mut Trace) {
        if let Capture::Redact(redactor) = self {
            redact_map(redactor.as_ref(), &mut trace.metadata);
            if let Some(error) = &mut trace.error {
                error.message = redactor.redact_str(&error.message);
            }
        }
    }
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capture::Full => f.write_str("Full"),
            Capture::MetadataOnly => f.write_str("MetadataOnly"),
            Capture::Redact(_) => f.write_str("Redact(..)"),
        }
    }
}

/// Attribute keys whose values are conversation content rather than metadata.
const CONTENT_ATTRIBUTES: [&str; 9] = [
    "gen_ai.system_instructions",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "gen_ai.tool.definitions",
    "events",
];

fn is_content_attribute(key: &str) -> bool {
    CONTENT_ATTRIBUTES.contains(&key)
}

fn redact_map(redactor: &dyn Redactor, map: &mut std::collections::BTreeMap<String, Value>) {
    for (key, value) in map.iter_mut() {
        if redactor.is_secret_key(key) {
            *value = Value::String(REDACTED.to_owned());
        } else {
            redactor.redact(value);
        }
    }
}

/// What a masked value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Masks secrets in recorded values.
///
/// Implement [`Redactor::redact_str`] (and [`Redactor::is_secret_key`] to mask by
/// key); the provided [`Redactor::redact`] walks JSON recursively, masking every value
/// under a secret key and passing every other string through `redact_str`.
pub trait Redactor: Send + Sync {
    /// The string with every secret in it masked.
    fn redact_str(&self, text: &str) -> String;

    /// True when a value stored under `key` is a secret as a whole.
    fn is_secret_key(&self, key: &str) -> bool {
        let _ = key;
        false
    }

    /// Masks secrets in `value` in place, recursively.
    fn redact(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                let redacted = self.redact_str(text);
                if redacted != *text {
                    *text = redacted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            Value::Object(object) => {
                for (key, item) in object.iter_mut() {
                    if self.is_secret_key(key) && !item.is_null() {
                        *item = Value::String(REDACTED.to_owned());
                    } else {
                        self.redact(item);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// The default redactor: masks values under secret-looking keys (`api_key`, `apiKey`,
/// `authorization`, `password`, `passwd`, `secret`, `client_secret`, `token`,
/// `access_token`, `refresh_token`, `cookie`, `private_key`, ...) and, inside any
/// string, common secret shapes: OpenAI and Anthropic keys (`sk-...`, `sk-ant-...`),
/// `Bearer` tokens, AWS access key ids (`AKIA...`), GitHub tokens (`ghp_...`,
/// `github_pat_...`), Slack tokens (`xox?-...`) and `key=value` pairs whose key looks
/// secret. Token counts (`input_tokens`, `max_tokens`) are not secrets and stay.
///
/// ```
/// use serde_json::json;
/// use trace_store_recorder::{Redactor, SecretRedactor};
///
/// let mut value = json!({"api_key": "abc", "prompt": "use sk-proj-0123456789abcdefghij", "max_tokens": 5});
/// SecretRedactor.redact(&mut value);
/// assert_eq!(value, json!({"api_key": "[REDACTED]", "prompt": "use [REDACTED]", "max_tokens": 5}));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SecretRedactor;

/// Words that make a key secret wherever they appear in it.
const SECRET_WORDS: [&str; 12] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "auth",
    "cookie",
    "credential",
    "credentials",
    "passphrase",
];

/// Word pairs that make a key secret (`api_key`, `private-key`, `accessKey`, ...).
const SECRET_PAIRS: [(&str, &str); 4] = [
    ("api", "key"),
    ("private", "key"),
    ("access", "key"),
    ("secret", "key"),
];

static SECRET_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\bsk-(?:ant-)?[A-Za-z0-9_\-]{16,}",
        r"|(?i:\bbearer)\s+[A-Za-z0-9._~+/=\-]{8,}",
        r"|\bAKIA[0-9A-Z]{16}\b",
        r"|\bgh[pousr]_[A-Za-z0-9]{20,}",
        r"|\bgithub_pat_[A-Za-z0-9_]{20,}",
        r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}",
    ))
    .expect("the secret-shape pattern is valid")
});

static SECRET_ASSIGNMENTS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b((?:api[_-]?key|apikey|password|passwd|secret|client[_-]?secret|access[_-]?token|refresh[_-]?token|token)"?\s*[:=]\s*"?)([^\s",}&']+)"#,
    )
    .expect("the secret-assignment pattern is valid")
});

impl Redactor for SecretRedactor {
    fn redact_str(&self, text: &str) -> String {
        let masked = SECRET_SHAPES.replace_all(text, REDACTED);
        SECRET_ASSIGNMENTS
            .replace_all(&masked, |caps: &regex::Captures<'_>| {
                if &caps[2] == REDACTED {
                    caps[0].to_owned()
                } else {
                    format!("{}{REDACTED}", &caps[1])
                }
            })
            .into_owned()
    }

    fn is_secret_key(&self, key: &str) -> bool {
        let words = key_words(key);
        words
            .iter()
            .any(|word| SECRET_WORDS.contains(&word.as_str()))
            || words.windows(2).any(|pair| {
                SECRET_PAIRS
                    .iter()
                    .any(|(first, second)| pair[0] == *first && pair[1] == *second)
            })
    }
}

/// The lower-case words of a key split at punctuation and camelCase humps:
/// `x-apiKey` -> `["x", "api", "key"]`.
fn key_words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_are_recognised_and_token_counts_are_not() {
        for key in [
            "api_key",
            "apiKey",
            "x-api-key",
            "APIKEY",
            "Authorization",
            "password",
            "db_passwd",
            "client_secret",
            "token",
            "access_token",
            "refresh_token",
            "Cookie",
            "set-cookie",
            "private_key",
            "awsSecretAccessKey",
        ] {
            assert!(SecretRedactor.is_secret_key(key), "{key} should be secret");
        }
        for key in [
            "input_tokens",
            "max_tokens",
            "gen_ai.usage.output_tokens",
            "author",
            "keyword",
            "model",
        ] {
            assert!(
                !SecretRedactor.is_secret_key(key),
                "{key} should not be secret"
            );
        }
    }

    #[test]
    fn secret_shapes_are_masked_inside_text() {
        let text = "keys sk-ant-api03-abcdefghijklmnop1234, sk-proj-ABCDEFGHIJKLMNOP, \
                    header Bearer eyJhbGciOi.payload.sig, aws AKIAIOSFODNN7EXAMPLE, \
                    gh ghp_abcdefghijklmnopqrstuvwxyz0123, url ?api_key=hunter2&x=1";
        let redacted = SecretRedactor.redact_str(text);
        for secret in [
            "sk-ant-api03",
            "sk-proj",
            "eyJhbGciOi",
            "AKIAIOSFODNN7",
            "ghp_abc",
            "hunter2",
        ] {
            assert!(
                !redacted.contains(secret),
                "{secret} survived in {redacted}"
            );
        }
        assert!(redacted.contains("x=1"), "{redacted}");
        assert_eq!(
            SecretRedactor.redact_str("plain words, skip-this"),
            "plain words, skip-this"
        );
    }

    #[test]
    fn redaction_walks_nested_json() {
        let mut value = json!({"outer": [{"headers": {"Authorization": "Basic abc"}},
                                          "text with sk-live0123456789abcdefgh"],
                               "password": null});
        SecretRedactor.redact(&mut value);
        assert_eq!(
            value,
            json!({"outer": [{"headers": {"Authorization": REDACTED}}, "text with [REDACTED]"],
                   "password": null})
        );
    }

    #[test]
    fn metadata_only_drops_content() {
        let mut step = Step::llm_call("m")
            .with_input(json!("prompt"))
            .with_output(json!("answer"))
            .with_attribute("gen_ai.system_instructions", "be nice")
            .with_attribute("gen_ai.request.temperature", 0.5);
        Capture::MetadataOnly.apply_to_step(&mut step);
        assert_eq!(step.input, None);
        assert_eq!(step.output, None);
        assert_eq!(
            step.attributes.keys().collect::<Vec<_>>(),
            ["gen_ai.request.temperature"]
        );
        assert_eq!(step.model.as_deref(), Some("m"));
    }
}
