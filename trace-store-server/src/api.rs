//! The JSON API under `/api/`, and `/healthz`.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use trace_store_core::{
    Error, GroupBy, GroupKey, RetentionPolicy, Score, ScoreSource, Timestamp, Trace, TraceFilter,
    TraceStats, TraceStore, TraceStoreExt, TraceSummary,
};

use crate::AppState;
use crate::body::read_limited;
use crate::error::{ApiError, ApiResult};
use crate::params::{DEFAULT_LIMIT, MAX_LIMIT, Params, describe, encode_cursor};
use trace_store_core::redact_url;

/// Children listed with one trace.
const MAX_CHILDREN: usize = 100;
/// Traces looked at to pick the metadata keys worth a column.
const PINNED_SAMPLE: usize = 200;
/// Metadata keys pinned as columns at most.
const PINNED_KEYS: usize = 3;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/traces", get(list_traces))
        .route("/api/count", get(count_traces))
        .route("/api/traces/{run_id}", get(get_trace).delete(delete_trace))
        .route("/api/traces/{run_id}/scores", post(add_score))
        .route("/api/stats", get(stats))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{session_id}", get(get_session))
        .route("/api/delete", post(delete_matching))
        .route("/api/purge", post(purge))
        .route("/api/config", get(config))
}

type Reply = ApiResult<Json<Value>>;

pub(crate) async fn healthz(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"ok": true, "store": redact_url(&state.options.store_label)}))
}

fn path_value(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    path.map(|Path(value)| value)
        .map_err(|rejection| ApiError::invalid(format!("bad path: {rejection}")))
}

async fn list_traces(State(state): State<AppState>, RawQuery(query): RawQuery) -> Reply {
    let mut params = Params::parse(query.as_deref())?;
    let mut filter = params.take_filter()?;
    params.take_paging(&mut filter, Some(DEFAULT_LIMIT))?;
    params.finish()?;
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT);
    // One more than the page: a successor exists only if it comes back, so an exactly
    // full last page has no `next` leading to an empty one.
    filter.limit = Some(limit.saturating_add(1));
    let mut traces = state
        .blocking(move |store| Ok(store.query(&filter)?))
        .await?;
    let next = if traces.len() > limit {
        traces.truncate(limit);
        traces.last().map(|last| encode_cursor(&last.cursor()))
    } else {
        None
    };
    Ok(Json(json!({"traces": traces, "next": next})))
}

async fn count_traces(State(state): State<AppState>, RawQuery(query): RawQuery) -> Reply {
    let mut params = Params::parse(query.as_deref())?;
    let filter = params.take_filter()?;
    ignore_paging(&mut params)?;
    params.finish()?;
    let count = state
        .blocking(move |store| Ok(store.count(&filter)?))
        .await?;
    Ok(Json(json!({"count": count})))
}

async fn get_trace(
    State(state): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
) -> Reply {
    let run_id = path_value(run_id)?;
    state
        .blocking(move |store| {
            let trace = store
                .load(&run_id)
                .map_err(|error| not_found(error, &run_id))?;
            let summary = TraceSummary::from(&trace);
            let children = store.query(
                &TraceFilter::new()
                    .with_parent_run_id(run_id.clone())
                    .with_limit(MAX_CHILDREN),
            )?;
            Ok(Json(
                json!({"trace": trace, "summary": summary, "children": children}),
            ))
        })
        .await
}

/// Counts and totals cover every match: paging parameters a client sends along with
/// its filters (the list's `limit`, `after`) are checked, then not applied.
fn ignore_paging(params: &mut Params) -> ApiResult<()> {
    params.take_paging(&mut TraceFilter::new(), None)
}

fn not_found(error: Error, run_id: &str) -> ApiError {
    match error {
        Error::NotFound { .. } => ApiError::not_found(format!("no trace with run_id {run_id:?}")),
        other => other.into(),
    }
}

async fn delete_trace(
    State(state): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
) -> Reply {
    let run_id = path_value(run_id)?;
    let deleted = state
        .blocking(move |store| Ok(store.delete(&run_id)?))
        .await?;
    Ok(Json(json!({"deleted": deleted})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreBody {
    name: String,
    value: Option<f64>,
    label: Option<String>,
    comment: Option<String>,
    source: Option<String>,
    step_id: Option<String>,
}

/// A JSON body of at most the server's limit, decoded into `T`; a body that is not
/// the expected JSON is 400 naming why.
async fn json_body<T: serde::de::DeserializeOwned>(state: &AppState, body: Body) -> ApiResult<T> {
    let bytes = read_limited(body, state.options.max_body, state.options.body_timeout).await?;
    serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::invalid(format!("the JSON body is not valid: {error}")))
}

async fn add_score(
    State(state): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
    body: Body,
) -> Reply {
    let run_id = path_value(run_id)?;
    let request: ScoreBody = json_body(&state, body).await?;
    let mut score = Score::new(request.name);
    score.value = request.value;
    score.label = request.label;
    score.comment = request.comment;
    score.step_id = request.step_id;
    if let Some(source) = request.source {
        score.source = ScoreSource::from_name(&source);
    }
    score.validate()?;
    state
        .blocking(move |store| {
            let stored = store
                .load(&run_id)
                .map_err(|error| not_found(error, &run_id))?;
            // A part that carries only the score: merge keeps every other field, and
            // `created_at` stays the stored one (merge takes the earlier).
            let mut part = Trace::new(run_id).with_created_at(stored.created_at);
            part.schema_version = stored.schema_version;
            part.add_score(score);
            let merged = store.merge(&part)?;
            Ok(Json(json!({"summary": TraceSummary::from(&merged)})))
        })
        .await
}

async fn stats(State(state): State<AppState>, RawQuery(query): RawQuery) -> Reply {
    let mut params = Params::parse(query.as_deref())?;
    let group = params
        .take("group")
        .map(|text| {
            text.parse::<GroupBy>()
                .map_err(|error| ApiError::invalid(format!("parameter group: {}", describe(error))))
        })
        .transpose()?;
    let filter = params.take_filter()?;
    ignore_paging(&mut params)?;
    params.finish()?;
    state
        .blocking(move |store| {
            let total = store.stats(&filter)?;
            let groups = match group {
                Some(group) => store.stats_by(&filter, group)?,
                None => Vec::new(),
            };
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(key, stats)| json!({"label": key.to_string(), "key": key, "stats": stats}))
                .collect();
            Ok(Json(json!({"total": total, "groups": groups})))
        })
        .await
}

/// Summaries read per query while looking for the sessions of a page.
const SESSION_WALK_PAGE: usize = 500;

async fn list_sessions(State(state): State<AppState>, RawQuery(query): RawQuery) -> Reply {
    let mut params = Params::parse(query.as_deref())?;
    let filter = params.take_filter()?;
    let offset = params.take_number("offset")?.unwrap_or(0);
    let limit = params.take_number("limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(ApiError::invalid(format!(
            "parameter limit: {limit} is more than the maximum of {MAX_LIMIT}"
        )));
    }
    params.finish()?;
    state
        .blocking(move |store| {
            // Totals per session come from the store's grouped stats (SQL where there
            // is SQL); only the order (newest activity first) and the page's first and
            // last times need summaries.
            let mut stats: HashMap<String, TraceStats> = store
                .stats_by(&filter, GroupBy::Session)?
                .into_iter()
                .filter_map(|(key, stats)| match key {
                    GroupKey::Session(Some(session_id)) => Some((session_id, stats)),
                    _ => None,
                })
                .collect();
            let page = sessions_by_last(store, &filter, offset.saturating_add(limit), &stats)?;
            let mut sessions = Vec::with_capacity(limit);
            for (session_id, last) in page.into_iter().skip(offset) {
                let stats = stats.remove(&session_id).unwrap_or_default();
                // The session's oldest match: the last one in the store's newest-first order.
                let oldest = filter
                    .clone()
                    .with_session_id(session_id.clone())
                    .with_offset(usize::try_from(stats.count.saturating_sub(1)).unwrap_or(0))
                    .with_limit(1);
                let first = store.query(&oldest)?.first().map_or(last, |s| s.created_at);
                sessions.push(json!({"session_id": session_id, "stats": stats,
                                     "first": first, "last": last}));
            }
            Ok(Json(json!({"sessions": sessions})))
        })
        .await
}

/// The first `wanted` sessions of `known` in order of their newest matching trace,
/// newest first, each with that trace's time: reads matches newest first, a page at
/// a time, and stops once it has them (or has seen every known session).
fn sessions_by_last(
    store: &dyn TraceStore,
    filter: &TraceFilter,
    wanted: usize,
    known: &HashMap<String, TraceStats>,
) -> ApiResult<Vec<(String, Timestamp)>> {
    let wanted = wanted.min(known.len());
    let mut order = Vec::with_capacity(wanted);
    let mut seen = HashSet::with_capacity(wanted);
    let mut walk = filter.clone().with_limit(SESSION_WALK_PAGE);
    while order.len() < wanted {
        let page = store.query(&walk)?;
        for summary in &page {
            if let Some(session_id) = &summary.session_id
                && known.contains_key(session_id)
                && seen.insert(session_id.clone())
            {
                order.push((session_id.clone(), summary.created_at));
            }
        }
        match page.last() {
            Some(last) if page.len() == SESSION_WALK_PAGE => walk.after = Some(last.cursor()),
            _ => break,
        }
    }
    order.truncate(wanted);
    Ok(order)
}

async fn get_session(
    State(state): State<AppState>,
    session_id: Result<Path<String>, PathRejection>,
) -> Reply {
    let session_id = path_value(session_id)?;
    state
        .blocking(move |store| {
            let mut turns = store.query(&TraceFilter::new().with_session_id(session_id.clone()))?;
            if turns.is_empty() {
                return Err(ApiError::not_found(format!(
                    "no trace with session_id {session_id:?}"
                )));
            }
            turns.reverse();
            Ok(Json(json!({"session_id": session_id, "turns": turns})))
        })
        .await
}

async fn delete_matching(State(state): State<AppState>, RawQuery(query): RawQuery) -> Reply {
    let mut params = Params::parse(query.as_deref())?;
    let confirm = params.take_bool("confirm")?;
    let mut filter = params.take_filter()?;
    params.take_paging(&mut filter, None)?;
    params.finish()?;
    if !confirm {
        return Err(ApiError::invalid(
            "deleting by filter needs confirm=true (check what it selects with /api/count first)",
        ));
    }
    let deleted = state
        .blocking(move |store| Ok(store.delete_where(&filter)?))
        .await?;
    Ok(Json(json!({"deleted": deleted})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    older_than: Option<String>,
    keep: Option<u64>,
    #[serde(default)]
    dry_run: bool,
}

async fn purge(State(state): State<AppState>, body: Body) -> Reply {
    let request: PurgeBody = json_body(&state, body).await?;
    let now = Timestamp::now();
    let mut policy = RetentionPolicy::new();
    if let Some(older_than) = &request.older_than {
        let duration = trace_store_core::parse_age(older_than)
            .map_err(|error| ApiError::invalid(format!("older_than: {}", describe(error))))?;
        policy = policy.with_max_age(duration);
    }
    if let Some(keep) = request.keep {
        policy = policy.with_max_count(keep);
    }
    if policy.max_age.is_none() && policy.max_count.is_none() {
        return Err(ApiError::invalid(
            "purge needs older_than (such as \"30d\"), keep (a number of traces), or both",
        ));
    }
    let dry_run = request.dry_run;
    state
        .blocking(move |store| {
            let report = if dry_run {
                store.purge_preview(&policy, now)?
            } else {
                store.purge(&policy, now)?
            };
            Ok(Json(json!({
                "deleted_by_age": report.deleted_by_age,
                "deleted_by_count": report.deleted_by_count,
                "dry_run": dry_run
            })))
        })
        .await
}

async fn config(State(state): State<AppState>) -> Reply {
    let store_label = redact_url(&state.options.store_label);
    state
        .blocking(move |store| {
            let newest = store.list(PINNED_SAMPLE, 0)?;
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for summary in &newest {
                for key in summary.metadata.keys() {
                    *counts.entry(key).or_default() += 1;
                }
            }
            let mut keys: Vec<(&str, usize)> = counts.into_iter().collect();
            keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let pinned: Vec<&str> = keys
                .into_iter()
                .take(PINNED_KEYS)
                .map(|(key, _)| key)
                .collect();
            Ok(Json(json!({
                "store": store_label,
                "version": env!("CARGO_PKG_VERSION"),
                "pinned_metadata": pinned,
            })))
        })
        .await
}
