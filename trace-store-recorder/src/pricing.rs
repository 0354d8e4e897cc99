//! Model prices, and the cost of a step computed from its token counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use trace_store_core::{Error, Result, Step, Trace, Usage};

/// Prices of one model, in nano-USD (1e-9 USD) per million tokens.
///
/// `$0.15` per million input tokens is `input: 150_000_000`. Each token count of a step
/// is priced at its own rate, as recorded: if a provider's `input_tokens` already include
/// the cache reads (OpenAI does, Anthropic does not), give `cache_read` the difference
/// between the cached and the plain rate, or 0; likewise `reasoning` when output tokens
/// already include reasoning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelPrice {
    /// Per million input (prompt) tokens.
    pub input: i64,
    /// Per million output (completion) tokens.
    pub output: i64,
    /// Per million input tokens read from the provider's prompt cache.
    pub cache_read: i64,
    /// Per million input tokens written to the provider's prompt cache.
    pub cache_write: i64,
    /// Per million reasoning tokens.
    pub reasoning: i64,
}

impl ModelPrice {
    /// Input and output prices; the others 0.
    pub fn new(input: i64, output: i64) -> ModelPrice {
        ModelPrice {
            input,
            output,
            ..ModelPrice::default()
        }
    }

    /// The cost of `usage` in nano-USD, rounded half away from zero, saturating at
    /// the limits of `i64`. Integer arithmetic only: money is never a float.
    pub fn cost_nano_usd(&self, usage: &Usage) -> i64 {
        let parts = [
            (usage.input_tokens, self.input),
            (usage.output_tokens, self.output),
            (usage.cache_read_input_tokens, self.cache_read),
            (usage.cache_creation_input_tokens, self.cache_write),
            (usage.reasoning_tokens, self.reasoning),
        ];
        // One u64 * i64 product always fits in i128; their sum may not, so it saturates.
        let total = parts.iter().fold(0_i128, |sum, &(tokens, price)| {
            sum.saturating_add(i128::from(tokens) * i128::from(price))
        });
        let rounded = total.saturating_add(total.signum() * 500_000) / 1_000_000;
        i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
    }
}

/// A table of model prices that fills in the cost of steps that have token counts but
/// no cost.
///
/// A model is found by its exact name, else by the longest table entry its name
/// starts with (so `gpt-4o-mini` prices `gpt-4o-mini-2024-07-18`). A cost the
/// producer recorded is never recomputed; a computed one is marked with the attribute
/// `cost.source = "computed"`.
///
/// ```
/// use trace_store_core::Step;
/// use trace_store_recorder::Pricing;
///
/// let pricing = Pricing::from_json(r#"{"gpt-4o-mini": {"input": 150000000, "output": 600000000}}"#)?;
/// let mut step = Step::llm_call("gpt-4o-mini-2024-07-18").with_usage(1_000, 200);
/// pricing.apply_to_step(&mut step);
/// assert_eq!(step.cost_nano_usd, 150_000 + 120_000); // $0.00027
/// assert_eq!(step.attributes["cost.source"], "computed");
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pricing {
    models: BTreeMap<String, ModelPrice>,
}

impl Pricing {
    /// An empty table.
    pub fn new() -> Pricing {
        Pricing::default()
    }

    /// The table with `model` priced at `price`.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>, price: ModelPrice) -> Pricing {
        self.models.insert(model.into(), price);
        self
    }

    /// Reads a table from JSON: an object from model name to
    /// `{"input", "output", "cache_read", "cache_write", "reasoning"}` (nano-USD per
    /// million tokens, each optional). Anything else is [`Error::InvalidInput`].
    pub fn from_json(json: &str) -> Result<Pricing> {
        serde_json::from_str(json)
            .map_err(|error| Error::invalid(format!("pricing table: {error}")))
    }

    /// Reads a table from a JSON file (see [`Pricing::from_json`]).
    pub fn from_json_file(path: impl AsRef<std::path::Path>) -> Result<Pricing> {
        Pricing::from_json(&std::fs::read_to_string(path)?)
    }

    /// The price of `model`: its exact entry, else the longest entry it starts with.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        self.models.get(model).or_else(|| {
            self.models
                .iter()
                .filter(|(name, _)| model.starts_with(name.as_str()))
                .max_by_key(|(name, _)| name.len())
                .map(|(_, price)| price)
        })
    }

    /// Fills in the cost of a step that has usage, no cost and a priced model.
    pub fn apply_to_step(&self, step: &mut Step) {
        if step.cost_nano_usd != 0 || step.usage.is_zero() {
            return;
        }
        let Some(price) = step.model.as_deref().and_then(|model| self.price(model)) else {
            return;
        };
        step.cost_nano_usd = price.cost_nano_usd(&step.usage);
        step.attributes
            .insert("cost.source".to_owned(), "computed".into());
    }

    /// Fills in the cost of every step of `trace` (see [`Pricing::apply_to_step`]).
    pub fn apply_to_trace(&self, trace: &mut Trace) {
        if !self.models.is_empty() {
            trace
                .steps
                .iter_mut()
                .for_each(|step| self.apply_to_step(step));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_uses_every_rate_and_rounds_half_up() {
        let price = ModelPrice {
            input: 3_000_000_000,
            output: 15_000_000_000,
            cache_read: 300_000_000,
            cache_write: 3_750_000_000,
            reasoning: 1,
        };
        let mut usage = Usage::new(1_000, 500);
        usage.cache_read_input_tokens = 2_000;
        usage.cache_creation_input_tokens = 100;
        usage.reasoning_tokens = 500_000;
        // 3000000 + 7500000 + 600000 + 375000 + 0.5 -> rounds up.
        assert_eq!(price.cost_nano_usd(&usage), 11_475_001);
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let price = ModelPrice::new(i64::MAX, i64::MAX);
        assert_eq!(
            price.cost_nano_usd(&Usage::new(u64::MAX, u64::MAX)),
            i64::MAX
        );
    }

    #[test]
    fn producer_cost_is_kept_and_unknown_models_are_left_alone() {
        let pricing = Pricing::new().with_model("m", ModelPrice::new(1_000_000, 0));
        let mut given = Step::llm_call("m").with_usage(10, 0).with_cost_nano_usd(7);
        pricing.apply_to_step(&mut given);
        assert_eq!(given.cost_nano_usd, 7);
        assert!(!given.attributes.contains_key("cost.source"));
        let mut unknown = Step::llm_call("other").with_usage(10, 0);
        pricing.apply_to_step(&mut unknown);
        assert_eq!(unknown.cost_nano_usd, 0);
    }

    #[test]
    fn longest_prefix_wins_and_bad_json_is_invalid_input() {
        let pricing = Pricing::from_json(
            r#"{"gpt-4o": {"input": 1}, "gpt-4o-mini": {"input": 2}, "gpt-4": {"input": 3}}"#,
        )
        .expect("valid table");
        assert_eq!(pricing.price("gpt-4o-mini-2024").map(|p| p.input), Some(2));
        assert_eq!(pricing.price("gpt-4o-2024").map(|p| p.input), Some(1));
        assert_eq!(pricing.price("claude"), None);
        let error = Pricing::from_json(r#"{"m": {"inptu": 1}}"#).expect_err("unknown field");
        assert!(matches!(error, Error::InvalidInput { .. }), "{error}");
    }
}
