//! The one fold of a partial trace into a stored one (rule C12).

use std::collections::HashMap;

use crate::{Status, Trace};

impl Trace {
    /// Folds `part`, a piece of the same run, into this trace: the one definition of
    /// [`TraceStore::merge`](crate::TraceStore::merge) that every backend applies.
    ///
    /// - Steps: a step of `part` with an `id` replaces this trace's step with that id
    ///   (the last one, if several share it) in place; any other step is appended, in
    ///   `part`'s order.
    /// - Header: `name`, `parent_run_id`, `session_id`, `ended_at` and `error` set in
    ///   `part` win; `status` wins unless it is [`Status::Unset`]; `created_at` is the
    ///   earlier of the two; `schema_version` the higher.
    /// - Metadata: the union, `part` winning per key.
    /// - Scores: added as by [`Trace::add_score`], so one with the same identity replaces.
    ///
    /// `run_id` is not compared: the caller decides what belongs together.
    ///
    /// ```
    /// use trace_store_core::{Status, Step, Trace};
    ///
    /// let mut stored = Trace::new("r")
    ///     .with_status(Status::Running)
    ///     .with_step(Step::llm_call("m").with_id("s1"));
    /// let part = Trace::new("r")
    ///     .with_status(Status::Ok)
    ///     .with_step(Step::llm_call("m").with_id("s1").with_usage(10, 2))
    ///     .with_step(Step::tool_call("search").with_id("s2"));
    /// stored.merge(&part);
    /// assert_eq!(stored.status, Status::Ok);
    /// assert_eq!(stored.steps.len(), 2);
    /// assert_eq!(stored.steps[0].usage.input_tokens, 10);
    /// ```
    pub fn merge(&mut self, part: &Trace) {
        self.schema_version = self.schema_version.max(part.schema_version);
        merge_option(&mut self.name, &part.name);
        merge_option(&mut self.parent_run_id, &part.parent_run_id);
        merge_option(&mut self.session_id, &part.session_id);
        merge_option(&mut self.ended_at, &part.ended_at);
        merge_option(&mut self.error, &part.error);
        if part.status != Status::Unset {
            self.status = part.status;
        }
        self.created_at = self.created_at.min(part.created_at);
        for (key, value) in &part.metadata {
            self.metadata.insert(key.clone(), value.clone());
        }

        // Later steps win over earlier ones with the same id, as in `step_parents`.
        let mut by_id: HashMap<String, usize> = self
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, step)| step.id.clone().map(|id| (id, i)))
            .collect();
        for step in &part.steps {
            match step.id.as_ref().and_then(|id| by_id.get(id)) {
                Some(&at) => self.steps[at] = step.clone(),
                None => {
                    if let Some(id) = &step.id {
                        by_id.insert(id.clone(), self.steps.len());
                    }
                    self.steps.push(step.clone());
                }
            }
        }

        for score in &part.scores {
            self.add_score(score.clone());
        }
    }
}

fn merge_option<T: Clone>(stored: &mut Option<T>, part: &Option<T>) {
    if let Some(value) = part {
        *stored = Some(value.clone());
    }
}

#[cfg(test)]
mod tests {
    use crate::{ErrorInfo, Score, Status, Step, Timestamp, Trace};

    fn at(micros: i64) -> Timestamp {
        Timestamp::from_micros(micros).unwrap()
    }

    #[test]
    fn header_fields_set_in_the_part_win_and_unset_ones_keep() {
        let mut stored = Trace::new("r")
            .with_name("agent")
            .with_session_id("s")
            .with_created_at(at(20))
            .with_status(Status::Running)
            .with_metadata("a", 1)
            .with_metadata("b", 2);
        let mut part = Trace::new("r")
            .with_created_at(at(30))
            .with_metadata("b", 3)
            .with_metadata("c", 4)
            .with_error(ErrorInfo::new("boom"));
        part.status = Status::Unset;
        stored.merge(&part);
        assert_eq!(stored.name.as_deref(), Some("agent"));
        assert_eq!(stored.session_id.as_deref(), Some("s"));
        assert_eq!(stored.created_at, at(20), "the earlier created_at stays");
        assert_eq!(stored.status, Status::Running, "an unset status never wins");
        assert_eq!(
            stored.error.as_ref().map(|e| e.message.as_str()),
            Some("boom")
        );
        assert_eq!(
            serde_json::to_value(&stored.metadata).unwrap(),
            serde_json::json!({"a": 1, "b": 3, "c": 4})
        );
        stored.merge(&Trace::new("r").with_created_at(at(5)).with_name("renamed"));
        assert_eq!(
            (stored.created_at, stored.name.as_deref()),
            (at(5), Some("renamed"))
        );
    }

    #[test]
    fn steps_with_ids_replace_in_place_and_others_append() {
        let mut stored = Trace::new("r")
            .with_step(Step::llm_call("a").with_id("1"))
            .with_step(Step::llm_call("anon"))
            .with_step(Step::llm_call("b").with_id("2"));
        let part = Trace::new("r")
            .with_step(Step::llm_call("b2").with_id("2"))
            .with_step(Step::llm_call("anon"))
            .with_step(Step::llm_call("c").with_id("3"))
            .with_step(Step::llm_call("c2").with_id("3"));
        stored.merge(&part);
        let models: Vec<_> = stored
            .steps
            .iter()
            .map(|s| s.model.as_deref().unwrap())
            .collect();
        assert_eq!(models, ["a", "anon", "b2", "anon", "c2"]);
    }

    #[test]
    fn scores_replace_by_identity() {
        let mut stored = Trace::new("r").with_score(Score::new("q").with_value(0.0));
        stored.merge(
            &Trace::new("r")
                .with_score(Score::new("q").with_value(1.0))
                .with_score(Score::new("q").with_step_id("s").with_value(0.5)),
        );
        assert_eq!(stored.scores.len(), 2);
        assert_eq!(stored.scores[0].value, Some(1.0));
    }
}
