//! The one definition of a trace's searchable text (rule C13).

use serde_json::Value;

use crate::Trace;

/// Most bytes of searchable text kept per trace; text past it is not searchable.
///
/// Bounding it keeps text indexes proportional to the number of traces rather than to
/// their payloads (a 5 MB tool output would otherwise be indexed whole). The pieces are
/// taken in the order [`Trace::search_text`] lists, so names, models, errors and
/// metadata, which come first, are always searchable; the cut falls on a character
/// boundary.
pub const SEARCH_TEXT_MAX_BYTES: usize = 64 * 1024;

impl Trace {
    /// The text a [`TraceFilter::text`](crate::TraceFilter::text) query searches,
    /// lower-cased (`str::to_lowercase`) and cut to [`SEARCH_TEXT_MAX_BYTES`].
    ///
    /// Pieces, in this order, each followed by a newline:
    /// 1. the trace's name and session_id, and its error's type and message;
    /// 2. the string values of metadata (top-level and nested), keys in order;
    /// 3. for each step in recorded order: name, model, tool name, error type and
    ///    message, then every JSON string leaf of its input, output and attributes
    ///    (objects in key order, arrays in order).
    ///
    /// JSON strings are taken decoded, so `你好` and `"quoted"` match as typed,
    /// never as `\u4f60` or `\"`. Numbers, booleans and object keys are not text.
    ///
    /// ```
    /// use trace_store_core::{Step, Trace};
    ///
    /// let trace = Trace::new("r")
    ///     .with_name("Support-Bot")
    ///     .with_step(Step::tool_call("search").with_input(serde_json::json!({"q": "你好 \"world\""})));
    /// let text = trace.search_text();
    /// assert!(text.contains("support-bot"));
    /// assert!(text.contains("你好 \"world\""));
    /// assert!(trace.text_matches("WORLD\""));
    /// ```
    pub fn search_text(&self) -> String {
        let mut text = SearchText::default();
        text.push(self.name.as_deref());
        text.push(self.session_id.as_deref());
        if let Some(error) = &self.error {
            text.push(error.error_type.as_deref());
            text.push(Some(&error.message));
        }
        for value in self.metadata.values() {
            text.push_json(value);
        }
        for step in &self.steps {
            text.push(step.name.as_deref());
            text.push(step.model.as_deref());
            text.push(step.tool.as_ref().map(|tool| tool.name.as_str()));
            if let Some(error) = &step.error {
                text.push(error.error_type.as_deref());
                text.push(Some(&error.message));
            }
            for value in [&step.input, &step.output].into_iter().flatten() {
                text.push_json(value);
            }
            for value in step.attributes.values() {
                text.push_json(value);
            }
            if text.full {
                break;
            }
        }
        text.out
    }

    /// True if this trace's [`search_text`](Trace::search_text) contains `query`,
    /// case-insensitively: the predicate every backend's text search ends with.
    pub fn text_matches(&self, query: &str) -> bool {
        text_contains(&self.search_text(), query)
    }
}

/// True if `search_text` (as [`Trace::search_text`] returns it) contains `query`
/// case-insensitively. Backends that keep the searchable text beside a trace use this
/// to recheck what their index found.
pub fn text_contains(search_text: &str, query: &str) -> bool {
    search_text.contains(&query.to_lowercase())
}

#[derive(Default)]
struct SearchText {
    out: String,
    full: bool,
}

impl SearchText {
    fn push(&mut self, piece: Option<&str>) {
        let Some(piece) = piece.filter(|p| !p.is_empty()) else {
            return;
        };
        if self.full {
            return;
        }
        // `str::to_lowercase`, as on the query side: it lowers a word-final `Σ` to `ς`,
        // which `char::to_lowercase` (one char at a time) cannot.
        for c in piece.to_lowercase().chars().chain(['\n']) {
            if self.out.len() + c.len_utf8() > SEARCH_TEXT_MAX_BYTES {
                self.full = true;
                return;
            }
            self.out.push(c);
        }
    }

    fn push_json(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.push(Some(s)),
            Value::Array(items) => items.iter().for_each(|v| self.push_json(v)),
            Value::Object(map) => {
                // Key order, whatever order the map keeps (serde_json's
                // `preserve_order` may be on in the dependency graph).
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                entries.into_iter().for_each(|(_, v)| self.push_json(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorInfo, Step};
    use serde_json::json;

    #[test]
    fn pieces_are_decoded_lowercased_and_in_order() {
        let trace = Trace::new("r")
            .with_name("Agent")
            .with_metadata("user", "ÜSER")
            .with_metadata("n", 17)
            .with_step(
                Step::llm_call("GPT-4o")
                    .with_input(json!([{"role": "user", "content": "Say \"hi\" 😀"}]))
                    .with_error(ErrorInfo::new("Rate LIMIT").with_type("HTTP429")),
            );
        assert_eq!(
            trace.search_text(),
            "agent\nüser\ngpt-4o\nhttp429\nrate limit\nsay \"hi\" 😀\nuser\n"
        );
        assert!(trace.text_matches("SAY \"HI\""));
        assert!(!trace.text_matches("17"), "numbers are not text");
        assert!(!trace.text_matches("content"), "keys are not text");
        assert!(!trace.text_matches("\\\""), "no JSON escapes");
    }

    #[test]
    fn text_is_lowercased_like_the_query() {
        let trace = Trace::new("r").with_name("ΟΔΟΣ");
        assert!(
            trace.text_matches("ΟΔΟΣ"),
            "a word-final sigma matches as typed"
        );
        assert!(trace.text_matches("οδος"));
    }

    #[test]
    fn text_past_the_cap_is_not_searchable_and_the_cut_is_on_a_char_boundary() {
        let filler = "é".repeat(SEARCH_TEXT_MAX_BYTES);
        let trace = Trace::new("r")
            .with_name("early")
            .with_step(Step::tool_call("t").with_output(json!(filler)))
            .with_step(Step::tool_call("late-needle"));
        let text = trace.search_text();
        assert!(text.len() <= SEARCH_TEXT_MAX_BYTES);
        assert!(text.len() > SEARCH_TEXT_MAX_BYTES - 4);
        assert!(trace.text_matches("early"));
        assert!(!trace.text_matches("late-needle"));
    }
}
