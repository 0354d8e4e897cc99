//! Scores: feedback, evaluations and rewards attached to a run or one of its steps.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result, Timestamp};

/// One judgement of a run or a step: a thumbs up, an evaluator's grade, a reward.
///
/// A score is identified by `(name, step_id, source)`: adding one with the same identity
/// replaces it ([`Trace::add_score`](crate::Trace::add_score)). Trace-level scores (no
/// `step_id`) that carry a `value` appear in
/// [`TraceSummary::scores`](crate::TraceSummary::scores) and can be selected with
/// [`TraceFilter::with_score`](crate::TraceFilter::with_score).
///
/// ```
/// use trace_store_core::{Score, ScoreSource};
///
/// let thumbs_up = Score::new("user_feedback").with_value(1.0).with_comment("spot on");
/// let judge = Score::new("faithfulness").with_source(ScoreSource::Llm).with_value(0.82);
/// let step_grade = Score::new("tool_choice").with_label("correct").with_step_id("s2");
/// assert!(!thumbs_up.same_identity(&judge));
/// # let _ = step_grade;
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Score {
    /// What is judged, such as `"helpfulness"` or `"user_feedback"`.
    pub name: String,
    /// A numeric value (finite); thumbs up/down are conventionally 1 and 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// A categorical value, such as `"correct"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Free text: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Who judged.
    #[serde(default, skip_serializing_if = "ScoreSource::is_human")]
    pub source: ScoreSource,
    /// The step judged; `None` judges the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    /// When the judgement was made.
    pub created_at: Timestamp,
}

impl Score {
    /// A human score with this name, made now, with no value yet.
    pub fn new(name: impl Into<String>) -> Score {
        Score {
            name: name.into(),
            value: None,
            label: None,
            comment: None,
            source: ScoreSource::Human,
            step_id: None,
            created_at: Timestamp::now(),
        }
    }

    /// Sets the numeric value.
    #[must_use]
    pub fn with_value(mut self, value: f64) -> Score {
        self.value = Some(value);
        self
    }

    /// Sets the label.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Score {
        self.label = Some(label.into());
        self
    }

    /// Sets the comment.
    #[must_use]
    pub fn with_comment(mut self, comment: impl Into<String>) -> Score {
        self.comment = Some(comment.into());
        self
    }

    /// Sets who judged.
    #[must_use]
    pub fn with_source(mut self, source: ScoreSource) -> Score {
        self.source = source;
        self
    }

    /// Makes this a score of one step.
    #[must_use]
    pub fn with_step_id(mut self, step_id: impl Into<String>) -> Score {
        self.step_id = Some(step_id.into());
        self
    }

    /// Sets when the judgement was made.
    #[must_use]
    pub fn with_created_at(mut self, created_at: Timestamp) -> Score {
        self.created_at = created_at;
        self
    }

    /// True if both scores have the same `(name, step_id, source)`, so one replaces the
    /// other.
    pub fn same_identity(&self, other: &Score) -> bool {
        self.name == other.name && self.step_id == other.step_id && self.source == other.source
    }

    /// Checks what a store checks before it writes a score: a non-empty name, a finite
    /// value (JSON has no NaN or infinity), and a source that reads back as itself.
    pub fn validate(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(Error::invalid("score name is empty"));
        }
        if let Some(value) = self.value
            && !value.is_finite()
        {
            return Err(Error::invalid(format!(
                "score {:?} has the value {value}; scores must be finite numbers",
                self.name
            )));
        }
        if self.source.is_ambiguous() {
            return Err(Error::invalid(format!(
                "score {:?} has source Other({:?}); use ScoreSource::from_name, which gives the known variant",
                self.name,
                self.source.as_str()
            )));
        }
        Ok(())
    }
}

/// Who made a [`Score`]. Serialised as its snake_case name; an unknown name is kept in
/// [`ScoreSource::Other`] and written back unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ScoreSource {
    /// A person (a thumbs up in the viewer, an annotator).
    #[default]
    Human,
    /// A model acting as judge.
    Llm,
    /// A program (a unit check, a reward function).
    Code,
    /// Any other source, by name; build it with [`ScoreSource::from_name`].
    Other(String),
}

const KNOWN_SOURCES: [(ScoreSource, &str); 3] = [
    (ScoreSource::Human, "human"),
    (ScoreSource::Llm, "llm"),
    (ScoreSource::Code, "code"),
];

impl ScoreSource {
    /// The source with this name: a known variant, else `Other(name)`.
    pub fn from_name(name: &str) -> ScoreSource {
        Self::known(name).unwrap_or_else(|| ScoreSource::Other(name.to_owned()))
    }

    fn known(name: &str) -> Option<ScoreSource> {
        KNOWN_SOURCES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(source, _)| source.clone())
    }

    /// The snake_case name, as written in JSON.
    pub fn as_str(&self) -> &str {
        match self {
            ScoreSource::Other(name) => name,
            known => KNOWN_SOURCES
                .iter()
                .find(|(source, _)| source == known)
                .map_or("", |(_, name)| name),
        }
    }

    fn is_human(&self) -> bool {
        *self == ScoreSource::Human
    }

    fn is_ambiguous(&self) -> bool {
        matches!(self, ScoreSource::Other(name) if Self::known(name).is_some())
    }
}

impl fmt::Display for ScoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ScoreSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ScoreSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ScoreSource::from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_and_unknown_ones_are_kept() {
        for source in [
            ScoreSource::Human,
            ScoreSource::Llm,
            ScoreSource::Code,
            ScoreSource::Other("ragas".into()),
        ] {
            let json = serde_json::to_string(&source).unwrap();
            assert_eq!(serde_json::from_str::<ScoreSource>(&json).unwrap(), source);
        }
        assert!(
            Score::new("x")
                .with_source(ScoreSource::Other("llm".into()))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn invalid_scores_are_rejected() {
        assert!(Score::new("").validate().is_err());
        assert!(Score::new("x").with_value(f64::NAN).validate().is_err());
        assert!(
            Score::new("x")
                .with_value(f64::NEG_INFINITY)
                .validate()
                .is_err()
        );
        assert!(Score::new("x").with_value(-3.5).validate().is_ok());
    }
}
