//! The text index's keys: every three-character window of core's searchable text, as an
//! integer. Computed here rather than by `pg_trgm`, whose extraction (word splitting and
//! a per-word case fold) made indexing several times the cost of the rest of a save;
//! core's text is already lower-cased, so the windows need no folding. A query's windows
//! are a subset of the text's windows whenever the text contains the query, so
//! `search_keys @> query_keys` is a sound prefilter, and the `LIKE` and core's predicate
//! decide.

/// The window keys of `text`, sorted and without duplicates.
pub(crate) fn search_keys(text: &str) -> Vec<i32> {
    let mut keys = Vec::with_capacity(text.len());
    let mut window = ['\0'; 3];
    for (i, c) in text.chars().enumerate() {
        window = [window[1], window[2], c];
        if i >= 2 {
            keys.push(key(window));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// ASCII windows map one-to-one into `0..2^21`; any other window is hashed into the
/// rest of the non-negative `i32` range, where a collision only costs a recheck. This
/// mapping is part of the stored layout: changing it needs a schema migration.
fn key([a, b, c]: [char; 3]) -> i32 {
    let (a, b, c) = (u32::from(a), u32::from(b), u32::from(c));
    if a < 128 && b < 128 && c < 128 {
        return ((a << 14) | (b << 7) | c) as i32;
    }
    const ASCII_KEYS: u64 = 1 << 21;
    let packed = (u64::from(a) << 42) | (u64::from(b) << 21) | u64::from(c);
    let mixed = packed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    (ASCII_KEYS + mixed % ((1 << 31) - ASCII_KEYS)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contained_query_has_a_subset_of_the_keys() {
        let text = "ünïcødé 你好 tool call\nlatency";
        let keys = search_keys(text);
        for query in ["cødé 你", "ol c", "l\nla", "你好 t", "ünï"] {
            assert!(text.contains(query));
            let wanted = search_keys(query);
            assert!(!wanted.is_empty(), "{query:?}");
            assert!(
                wanted.iter().all(|k| keys.binary_search(k).is_ok()),
                "{query:?}"
            );
        }
        assert!(search_keys("ab").is_empty(), "shorter than a window");
        assert!(
            !search_keys("xyz")
                .iter()
                .all(|k| keys.binary_search(k).is_ok()),
            "an absent window is absent"
        );
    }

    #[test]
    fn keys_are_fixed_by_the_layout() {
        // Stored keys must never change meaning: pin a few.
        assert_eq!(search_keys("abc"), [(97 << 14) | (98 << 7) | 99]);
        let non_ascii = search_keys("aé€")[0];
        assert!(non_ascii >= 1 << 21, "{non_ascii}");
        assert_eq!(non_ascii, 1_531_454_952);
        assert_eq!(search_keys("abcabc").len(), 3, "deduplicated");
    }
}
