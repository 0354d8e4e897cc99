//! Arize Phoenix as a second target: its OTLP endpoint, its stored span count, and
//! the memory of its processes.

use std::collections::HashMap;

/// A running `phoenix serve`.
pub(crate) struct Phoenix {
    pub(crate) traces_url: String,
    graphql_url: String,
    pid: Option<u32>,
}

impl Phoenix {
    /// `base` is Phoenix's HTTP root (`http://127.0.0.1:6006`); `pid` its process.
    pub(crate) fn new(base: &str, pid: Option<u32>) -> Phoenix {
        let base = base.trim_end_matches('/');
        Phoenix {
            traces_url: format!("{base}/v1/traces"),
            graphql_url: format!("{base}/graphql"),
            pid,
        }
    }

    /// Spans Phoenix has stored, over all projects: it answers an export before it
    /// writes the spans, so this is how to tell when they are in.
    pub(crate) async fn span_count(&self, client: &reqwest::Client) -> u64 {
        let query = serde_json::json!({
            "query": "{ projects { edges { node { recordCount } } } }"
        });
        let response = client
            .post(&self.graphql_url)
            .json(&query)
            .send()
            .await
            .expect("Phoenix's GraphQL endpoint answers");
        let body: serde_json::Value = response.json().await.expect("a GraphQL answer");
        body["data"]["projects"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("no projects in {body}"))
            .iter()
            .filter_map(|edge| edge["node"]["recordCount"].as_u64())
            .sum()
    }

    /// Resident memory of Phoenix's process and its descendants, in MiB.
    pub(crate) fn rss_mib(&self) -> Option<f64> {
        let root = self.pid?;
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(parent) = parent_of(pid) {
                children.entry(parent).or_default().push(pid);
            }
        }
        let mut total_kib = 0.0;
        let mut pending = vec![root];
        while let Some(pid) = pending.pop() {
            total_kib += rss_kib(pid).unwrap_or(0.0);
            pending.extend(children.get(&pid).into_iter().flatten());
        }
        Some(total_kib / 1024.0)
    }
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: read after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn rss_kib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
