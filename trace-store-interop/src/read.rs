//! Reading traces from files of either format, with detection.

use std::fmt;
use std::io::BufRead;
use std::str::FromStr;

use serde_json::Value;
use trace_store_core::{Error, JsonlLine, Result, Trace, jsonl_lines, jsonl_traces};

use crate::selectools;

/// The format of a file of traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// trace-store's own: one [`Trace`] JSON per line, as
    /// [`TraceStoreExt::export_jsonl`](trace_store_core::TraceStoreExt::export_jsonl)
    /// writes it.
    Native,
    /// Any selectools shape (see [`selectools`](crate::selectools)).
    Selectools,
    /// Decided by the first record of the file.
    #[default]
    Auto,
}

impl Format {
    /// The name used on command lines: `native`, `selectools` or `auto`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Selectools => "selectools",
            Format::Auto => "auto",
        }
    }

    /// The format of one record, telling a native trace (it has `schema_version`, or
    /// `created_at` and no `start_time`) from a selectools one.
    pub fn detect(record: &Value) -> Format {
        let Some(object) = record.as_object() else {
            return Format::Native;
        };
        let inner = object
            .get("trace")
            .and_then(Value::as_object)
            .unwrap_or(object);
        if selectools::looks_native(inner) && !object.contains_key("trace") {
            Format::Native
        } else {
            // selectools' reader explains a trace-store store line better than the
            // native decoder's "expected a sequence" would.
            Format::Selectools
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        [Format::Native, Format::Selectools, Format::Auto]
            .into_iter()
            .find(|format| format.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown format {s:?} (expected native, selectools or auto)"
                ))
            })
    }
}

/// The traces of a file, one [`JsonlLine`] per record, as [`read_traces`] returns them.
pub struct Traces<'a> {
    format: Format,
    inner: Box<dyn Iterator<Item = JsonlLine> + 'a>,
}

impl fmt::Debug for Traces<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traces")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Traces<'_> {
    /// The format being read: the one asked for, or the one detected. `Auto` only
    /// when the input has no record to detect it from.
    pub fn format(&self) -> Format {
        self.format
    }
}

impl Iterator for Traces<'_> {
    type Item = JsonlLine;

    fn next(&mut self) -> Option<JsonlLine> {
        self.inner.next()
    }
}

/// Reads the traces of a stream in `format`, one result per record, with its line
/// number, so a caller can stop at the first bad record or skip it.
///
/// A stream is either JSON Lines (one record per line; blank lines are ignored) or one
/// JSON document, as selectools' `AgentTrace.to_json(path)` and `trace-store show
/// --json` write: an object (one trace) or an array of them, on one line or several.
/// [`Format::Auto`] decides between native and selectools from the first record that
/// is a JSON object; records before it are reported. Native lines are decoded
/// by [`jsonl_traces`], the same reader
/// [`TraceStoreExt::import_jsonl`](trace_store_core::TraceStoreExt::import_jsonl) uses.
///
/// An I/O error ends the stream after being reported once.
///
/// ```
/// use trace_store_interop::{Format, read_traces};
///
/// let file = br#"{"run_id": "r1", "start_time": 1767249377.0, "steps": [{"type": "llm_call"}]}
///
/// not json
/// {"run_id": "r2", "start_time": 1767249378.0, "steps": []}
/// "#;
/// let mut reader = &file[..];
/// let traces = read_traces(&mut reader, Format::Auto);
/// assert_eq!(traces.format(), Format::Selectools);
/// let results: Vec<_> = traces.map(|line| (line.line_number, line.trace.is_ok())).collect();
/// assert_eq!(results, [(1, true), (3, false), (4, true)]);
/// ```
pub fn read_traces<'a>(reader: &'a mut dyn BufRead, format: Format) -> Traces<'a> {
    let mut early: Vec<JsonlLine> = Vec::new();
    let mut consumed: u64 = 0;
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        consumed += 1;
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => {
                return Traces {
                    format,
                    inner: Box::new(early.into_iter()),
                };
            }
            Ok(_) if is_blank(&buffer) => continue,
            Ok(_) => {}
            Err(error) => {
                early.push(JsonlLine {
                    line_number: consumed,
                    trace: Err(error.into()),
                });
                return Traces {
                    format,
                    inner: Box::new(early.into_iter()),
                };
            }
        }
        match serde_json::from_slice::<Value>(&buffer) {
            // `json.dump(list_of_traces, f)` writes the whole array on one line.
            Ok(Value::Array(_)) if early.is_empty() => {
                return document(reader, buffer, consumed, format);
            }
            // Only an object can tell the formats apart; report anything else and
            // detect from the next record.
            Ok(value) if format == Format::Auto && !value.is_object() => {
                early.push(JsonlLine {
                    line_number: consumed,
                    trace: Err(Error::invalid(format!(
                        "expected a JSON object, found {}",
                        selectools::kind_of(&value)
                    ))),
                });
            }
            Ok(value) => {
                let format = resolve(format, &value);
                let first = JsonlLine {
                    line_number: consumed,
                    trace: decode(format, &buffer, value),
                };
                let lines: Box<dyn Iterator<Item = JsonlLine> + 'a> = match format {
                    Format::Selectools => {
                        Box::new(jsonl_lines(reader, selectools::trace_from_line))
                    }
                    _ => Box::new(jsonl_traces(reader)),
                };
                let rest = lines.map(move |line| JsonlLine {
                    line_number: line.line_number + consumed,
                    trace: line.trace,
                });
                return Traces {
                    format,
                    inner: Box::new(early.into_iter().chain(std::iter::once(first)).chain(rest)),
                };
            }
            // The first record does not end with its line: one JSON document.
            Err(error) if error.is_eof() && early.is_empty() => {
                return document(reader, buffer, consumed, format);
            }
            Err(error) => early.push(JsonlLine {
                line_number: consumed,
                trace: Err(Error::invalid(format!("not a JSON value: {error}"))),
            }),
        }
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// One record in `format`. Native records go through core's decoder and validation,
/// exactly as [`jsonl_traces`] decodes each line.
fn decode(format: Format, bytes: &[u8], value: Value) -> Result<Trace> {
    match format {
        Format::Selectools => selectools::trace_from_value(value),
        _ => Trace::from_json_slice(bytes).and_then(|trace| {
            trace.validate()?;
            Ok(trace)
        }),
    }
}

/// A whole stream holding one JSON document (an object or an array of them) that
/// starts on line `line_number`.
fn document<'a>(
    reader: &'a mut dyn BufRead,
    mut bytes: Vec<u8>,
    line_number: u64,
    format: Format,
) -> Traces<'a> {
    let single = |trace| Traces {
        format,
        inner: Box::new(std::iter::once(JsonlLine { line_number, trace })),
    };
    if let Err(error) = reader.read_to_end(&mut bytes) {
        return single(Err(error.into()));
    }
    let value = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => value,
        Err(error) => {
            if let Some(lines) = torn_first_line(&bytes, line_number, format) {
                return lines;
            }
            return single(Err(Error::invalid(format!(
                "not a JSON document: line {}, column {}: {error}",
                line_number - 1 + error.line() as u64,
                error.column()
            ))));
        }
    };
    let records = match value {
        Value::Array(records) => records,
        record => {
            let format = resolve(format, &record);
            return Traces {
                format,
                inner: Box::new(std::iter::once(JsonlLine {
                    line_number,
                    trace: decode(format, &bytes, record),
                })),
            };
        }
    };
    let format = records
        .first()
        .map_or(format, |record| resolve(format, record));
    Traces {
        format,
        inner: Box::new(records.into_iter().enumerate().map(move |(index, record)| {
            let trace = serde_json::to_vec(&record)
                .map_err(|e| Error::invalid(e.to_string()))
                .and_then(|bytes| decode(format, &bytes, record))
                .map_err(|error| Error::invalid(format!("array element {index}: {error}")));
            JsonlLine { line_number, trace }
        })),
    }
}

/// JSON Lines whose first record is cut short (a writer died mid-line) look like the
/// start of a multi-line document. When the next line is a record on its own, read the
/// stream as lines instead: the first is reported, the others are kept.
fn torn_first_line(bytes: &[u8], line_number: u64, format: Format) -> Option<Traces<'static>> {
    let first_len = bytes.iter().position(|&b| b == b'\n')? + 1;
    let (first, mut rest) = bytes.split_at(first_len);
    let next = rest.split(|&b| b == b'\n').find(|line| !is_blank(line))?;
    if !serde_json::from_slice::<Value>(next).is_ok_and(|value| value.is_object()) {
        return None;
    }
    let error = serde_json::from_slice::<Value>(first).err()?;
    let mut lines = vec![JsonlLine {
        line_number,
        trace: Err(Error::invalid(format!("not a JSON value: {error}"))),
    }];
    let traces = read_traces(&mut rest, format);
    let format = traces.format();
    lines.extend(traces.map(|line| JsonlLine {
        line_number: line.line_number + line_number,
        trace: line.trace,
    }));
    Some(Traces {
        format,
        inner: Box::new(lines.into_iter()),
    })
}

fn resolve(format: Format, record: &Value) -> Format {
    match format {
        Format::Auto => Format::detect(record),
        chosen => chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace_store_core::{Step, Timestamp};

    fn native(run_id: &str) -> Trace {
        Trace::new(run_id)
            .with_created_at(Timestamp::from_micros(7).unwrap())
            .with_step(Step::llm_call("m").with_usage(1, 2))
    }

    fn results(bytes: &[u8], format: Format) -> (Format, Vec<(u64, Result<Trace>)>) {
        let mut reader = bytes;
        let traces = read_traces(&mut reader, format);
        let format = traces.format();
        (
            format,
            traces.map(|line| (line.line_number, line.trace)).collect(),
        )
    }

    #[test]
    fn native_lines_keep_line_numbers_and_errors() {
        let mut file = Vec::new();
        file.extend_from_slice(b"\n  \n");
        file.extend(native("a").to_json_vec().unwrap());
        file.extend_from_slice(b"\n{\"run_id\": 5}\n\n");
        file.extend(native("b").to_json_vec().unwrap());
        let (format, lines) = results(&file, Format::Auto);
        assert_eq!(format, Format::Native);
        let numbers: Vec<_> = lines.iter().map(|(n, r)| (*n, r.is_ok())).collect();
        assert_eq!(numbers, [(3, true), (4, false), (6, true)]);
        assert_eq!(lines[0].1.as_ref().unwrap(), &native("a"));
        assert_eq!(lines[2].1.as_ref().unwrap(), &native("b"));
    }

    #[test]
    fn leading_garbage_is_reported_then_detection_goes_on() {
        let mut file = b"oops\n".to_vec();
        file.extend(native("a").to_json_vec().unwrap());
        let (format, lines) = results(&file, Format::Auto);
        assert_eq!(format, Format::Native);
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0]
                .1
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("not a JSON value")
        );
        assert_eq!(lines[1].0, 2);
    }

    #[test]
    fn forced_format_reads_the_other_as_errors() {
        let selectools = br#"{"run_id": "r", "start_time": 1.0}"#;
        let (_, lines) = results(selectools, Format::Native);
        assert!(lines[0].1.is_err());
        let native_line = native("a").to_json_vec().unwrap();
        let (_, lines) = results(&native_line, Format::Selectools);
        let error = lines[0].1.as_ref().unwrap_err().to_string();
        assert!(error.contains("native trace-store trace"), "{error}");
    }

    #[test]
    fn pretty_documents_and_arrays() {
        let pretty = serde_json::to_vec_pretty(&native("a")).unwrap();
        let (format, lines) = results(&pretty, Format::Auto);
        assert_eq!(format, Format::Native);
        assert_eq!(lines[0].1.as_ref().unwrap(), &native("a"));

        let to_json = br#"{
  "run_id": "r1",
  "start_time": 2.0,
  "steps": [{"type": "cache_hit", "model": "m"}]
}"#;
        let (format, lines) = results(to_json, Format::Auto);
        assert_eq!(format, Format::Selectools);
        assert_eq!(lines[0].1.as_ref().unwrap().steps.len(), 1);

        let array = br#"[
  {"run_id": "r1", "start_time": 2.0},
  {"run_id": "", "start_time": 2.0}
]"#;
        let (_, lines) = results(array, Format::Auto);
        assert!(lines[0].1.is_ok());
        let error = lines[1].1.as_ref().unwrap_err().to_string();
        assert!(error.contains("array element 1"), "{error}");

        let (_, lines) = results(b"{\n \"run_id\": \n", Format::Auto);
        let error = lines[0].1.as_ref().unwrap_err().to_string();
        assert!(error.contains("not a JSON document: line 3"), "{error}");
    }

    #[test]
    fn an_array_on_one_line_is_read_like_a_pretty_one() {
        // `json.dump([t.to_dict() for t in traces], f)` writes a single line.
        let one_line =
            br#"[{"run_id": "r1", "start_time": 2.0}, {"run_id": "r2", "start_time": 3.0}]
"#;
        let (format, lines) = results(one_line, Format::Auto);
        assert_eq!(format, Format::Selectools);
        let ids: Vec<_> = lines
            .iter()
            .map(|(n, r)| (*n, r.as_ref().map(|t| t.run_id.as_str()).ok()))
            .collect();
        assert_eq!(ids, [(1, Some("r1")), (1, Some("r2"))]);

        let mut native_array = b"\n[".to_vec();
        native_array.extend(native("a").to_json_vec().unwrap());
        native_array.extend_from_slice(b"]");
        let (format, lines) = results(&native_array, Format::Auto);
        assert_eq!(format, Format::Native);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].0, 2);
        assert_eq!(lines[0].1.as_ref().unwrap(), &native("a"));
    }

    #[test]
    fn detection_skips_records_that_are_not_objects() {
        let mut file = b"null\n42\n".to_vec();
        file.extend_from_slice(br#"{"run_id": "r1", "start_time": 2.0}"#);
        let (format, lines) = results(&file, Format::Auto);
        assert_eq!(format, Format::Selectools);
        let numbers: Vec<_> = lines.iter().map(|(n, r)| (*n, r.is_ok())).collect();
        assert_eq!(numbers, [(1, false), (2, false), (3, true)]);
        let error = lines[0].1.as_ref().unwrap_err().to_string();
        assert!(
            error.contains("expected a JSON object, found null"),
            "{error}"
        );
    }

    #[test]
    fn a_torn_first_line_does_not_hide_the_lines_after_it() {
        let mut file = b"{\"schema_version\": 1, \"run_id\": \"cut\n\n".to_vec();
        file.extend(native("a").to_json_vec().unwrap());
        file.extend_from_slice(b"\n");
        file.extend(native("b").to_json_vec().unwrap());
        let (format, lines) = results(&file, Format::Auto);
        assert_eq!(format, Format::Native);
        let numbers: Vec<_> = lines.iter().map(|(n, r)| (*n, r.is_ok())).collect();
        assert_eq!(numbers, [(1, false), (3, true), (4, true)]);
    }

    #[test]
    fn empty_input_has_no_records() {
        let (format, lines) = results(b"\n\n", Format::Auto);
        assert_eq!(format, Format::Auto);
        assert!(lines.is_empty());
    }

    #[test]
    fn format_names() {
        for format in [Format::Native, Format::Selectools, Format::Auto] {
            assert_eq!(format.as_str().parse::<Format>().unwrap(), format);
        }
        assert!("csv".parse::<Format>().is_err());
    }
}
