//! The learner's event log, the ads' last known features and the snapshots, in Postgres.

use adloop_learner::{EncodedFeatures, LearningUpdate};
use sqlx::{PgConnection, PgPool, Row};

use super::state::LearningState;
use super::validate::AcceptedEvent;

/// Held (transaction-scoped) by every writer of the log: `seq` order is then commit order.
const LOG_WRITER_LOCK: i64 = 0x6164_6c6f_6f70_4c31; // "adloopL1"

/// Events read per query when catching up (bounds memory on a long replay).
pub const CATCH_UP_PAGE: i64 = 10_000;

/// One logged event, as every replica applies it.
pub struct LoggedEvent {
    pub seq: i64,
    pub event_id: String,
    /// The update, its ad account included (empty when the event named none).
    pub update: LearningUpdate,
    /// The client's embedding of the creative, when it sent one.
    pub embedding: Option<Vec<f32>>,
}

pub async fn lock_log_for_writing(connection: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOG_WRITER_LOCK)
        .execute(connection)
        .await?;
    Ok(())
}

/// Events after `after_seq`, oldest first, at most one page.
pub async fn events_after(
    connection: &mut PgConnection,
    after_seq: i64,
    through_seq: i64,
) -> Result<Vec<LoggedEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, event_id, account_id, ad_id, features::text AS features, impressions, clicks, matured_clicks, \
                conversions, creative_embedding::text AS creative_embedding \
         FROM learning_events WHERE seq > $1 AND seq <= $3 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(CATCH_UP_PAGE)
    .bind(through_seq)
    .fetch_all(connection)
    .await?;
    rows.into_iter()
        .map(|row| {
            let features: String = row.try_get("features")?;
            let embedding: Option<String> = row.try_get("creative_embedding")?;
            Ok(LoggedEvent {
                seq: row.try_get("seq")?,
                event_id: row.try_get("event_id")?,
                update: LearningUpdate {
                    ad_id: row.try_get("ad_id")?,
                    account_id: row.try_get("account_id")?,
                    features: parse_features(&features)?,
                    impressions: row.try_get("impressions")?,
                    clicks: row.try_get("clicks")?,
                    matured_clicks: row.try_get("matured_clicks")?,
                    conversions: row.try_get("conversions")?,
                },
                embedding: embedding.map(|text| parse_embedding(&text)).transpose()?,
            })
        })
        .collect()
}

/// Fills in the features of events that came without them from their ads' last known features, and
/// remembers the features of events that carry them. Inside the writer's transaction, so every replica's
/// replay sees the same features.
pub async fn resolve_features(connection: &mut PgConnection, events: &mut [AcceptedEvent]) -> Result<(), sqlx::Error> {
    let wanted: Vec<String> = events
        .iter()
        .filter(|event| event.needs_known_features)
        .map(|event| event.update.ad_id.clone())
        .collect();
    if !wanted.is_empty() {
        let rows =
            sqlx::query("SELECT ad_id, features::text AS features FROM ad_creative_features WHERE ad_id = ANY($1)")
                .bind(&wanted)
                .fetch_all(&mut *connection)
                .await?;
        let mut known = std::collections::HashMap::new();
        for row in rows {
            let features: String = row.try_get("features")?;
            known.insert(row.try_get::<String, _>("ad_id")?, parse_features(&features)?);
        }
        for event in events.iter_mut().filter(|event| event.needs_known_features) {
            if let Some(features) = known.get(&event.update.ad_id) {
                event.update.features = features.clone();
            }
        }
    }
    let mut remembered: std::collections::BTreeMap<&str, String> = std::collections::BTreeMap::new();
    for event in events
        .iter()
        .filter(|event| !event.needs_known_features && !event.update.ad_id.is_empty())
    {
        remembered.insert(&event.update.ad_id, features_json(&event.update.features));
    }
    if !remembered.is_empty() {
        let (ad_ids, features): (Vec<&str>, Vec<String>) = remembered.into_iter().unzip();
        sqlx::query(
            "INSERT INTO ad_creative_features (ad_id, features) \
             SELECT ad_id, features::jsonb FROM UNNEST($1::text[], $2::text[]) AS given(ad_id, features) \
             ON CONFLICT (ad_id) DO UPDATE SET features = EXCLUDED.features, updated_at = now()",
        )
        .bind(ad_ids)
        .bind(features)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

/// Appends the events; an event id already in the log is skipped. Returns the ids appended.
pub async fn append(connection: &mut PgConnection, events: &[AcceptedEvent]) -> Result<Vec<String>, sqlx::Error> {
    let mut event_ids = Vec::with_capacity(events.len());
    let mut account_ids = Vec::with_capacity(events.len());
    let mut ad_ids = Vec::with_capacity(events.len());
    let mut features = Vec::with_capacity(events.len());
    let mut impressions = Vec::with_capacity(events.len());
    let mut clicks = Vec::with_capacity(events.len());
    let mut matured_clicks = Vec::with_capacity(events.len());
    let mut conversions = Vec::with_capacity(events.len());
    let mut values = Vec::with_capacity(events.len());
    let mut currencies = Vec::with_capacity(events.len());
    let mut event_times = Vec::with_capacity(events.len());
    let mut embeddings = Vec::with_capacity(events.len());
    for event in events {
        event_ids.push(event.event_id.as_str());
        account_ids.push(event.update.account_id.as_str());
        ad_ids.push(event.update.ad_id.as_str());
        features.push(features_json(&event.update.features));
        impressions.push(event.update.impressions);
        clicks.push(event.update.clicks);
        matured_clicks.push(event.update.matured_clicks);
        conversions.push(event.update.conversions);
        values.push(event.value.map(|(minor_units, _)| minor_units));
        currencies.push(event.value.map(|(_, currency)| currency.code().to_owned()));
        event_times.push(event.event_time_unix_seconds);
        embeddings.push(event.embedding.as_ref().map(|values| embedding_json(values)));
    }
    sqlx::query_scalar(
        "INSERT INTO learning_events (event_id, ad_id, features, impressions, clicks, matured_clicks, conversions, \
                                      value_minor_units, currency, event_time, account_id, creative_embedding) \
         SELECT event_id, ad_id, features::jsonb, impressions, clicks, matured_clicks, conversions, value_minor_units, \
                currency, to_timestamp(event_time), account_id, creative_embedding::jsonb \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], \
                     $8::int8[], $9::text[], $10::int8[], $11::text[], $12::text[]) WITH ORDINALITY \
              AS given(event_id, ad_id, features, impressions, clicks, matured_clicks, conversions, value_minor_units, \
                       currency, event_time, account_id, creative_embedding, position) \
         ORDER BY position \
         ON CONFLICT (event_id) DO NOTHING \
         RETURNING event_id",
    )
    .bind(event_ids)
    .bind(ad_ids)
    .bind(features)
    .bind(impressions)
    .bind(clicks)
    .bind(matured_clicks)
    .bind(conversions)
    .bind(values)
    .bind(currencies)
    .bind(event_times)
    .bind(account_ids)
    .bind(embeddings)
    .fetch_all(connection)
    .await
}

/// The accounts that share their patterns, sorted.
pub async fn sharing_accounts(connection: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_id FROM pattern_sharing_accounts WHERE shares ORDER BY account_id")
        .fetch_all(connection)
        .await
}

pub async fn set_sharing(pool: &PgPool, account_id: &str, shares: bool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pattern_sharing_accounts (account_id, shares) VALUES ($1, $2) \
         ON CONFLICT (account_id) DO UPDATE SET shares = EXCLUDED.shares, updated_at = now()",
    )
    .bind(account_id)
    .bind(shares)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn shares(pool: &PgPool, account_id: &str) -> Result<bool, sqlx::Error> {
    let shares: Option<bool> = sqlx::query_scalar("SELECT shares FROM pattern_sharing_accounts WHERE account_id = $1")
        .bind(account_id)
        .fetch_optional(pool)
        .await?;
    Ok(shares.unwrap_or(false))
}

/// A snapshot goes to the database in parts of at most this many bytes, so writing it never holds a second
/// copy of the whole in the driver's buffers.
const SNAPSHOT_PART_BYTES: usize = 8 << 20;

/// The newest snapshot taken under `config_fingerprint`: the seq it covers and its bytes (read part by part).
pub async fn newest_snapshot(pool: &PgPool, config_fingerprint: &str) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    let newest: Option<(i64, i64, i32, i64)> = sqlx::query_as(
        "SELECT id, through_seq, parts, total_bytes FROM learner_state_snapshots WHERE config_fingerprint = $1 \
         ORDER BY through_seq DESC LIMIT 1",
    )
    .bind(config_fingerprint)
    .fetch_optional(pool)
    .await?;
    let Some((snapshot_id, through_seq, parts, length)) = newest else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    for part in 0..parts {
        let chunk: Vec<u8> =
            sqlx::query_scalar("SELECT bytes FROM learner_state_snapshot_parts WHERE snapshot_id = $1 AND part = $2")
                .bind(snapshot_id)
                .bind(part)
                .fetch_one(pool)
                .await?;
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some((through_seq, bytes)))
}

/// Stores a snapshot (its row and its parts in one transaction) and keeps only the newest three under the
/// same constants.
pub async fn save_snapshot(
    pool: &PgPool,
    config_fingerprint: &str,
    through_seq: i64,
    state: &[u8],
) -> Result<(), sqlx::Error> {
    let chunks: Vec<&[u8]> = if state.is_empty() {
        vec![state]
    } else {
        state.chunks(SNAPSHOT_PART_BYTES).collect()
    };
    let mut transaction = pool.begin().await?;
    let snapshot_id: i64 = sqlx::query_scalar(
        "INSERT INTO learner_state_snapshots (through_seq, config_fingerprint, parts, total_bytes) \
         VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(through_seq)
    .bind(config_fingerprint)
    .bind(i32::try_from(chunks.len()).unwrap_or(i32::MAX))
    .bind(state.len() as i64)
    .fetch_one(&mut *transaction)
    .await?;
    for (part, chunk) in chunks.into_iter().enumerate() {
        sqlx::query("INSERT INTO learner_state_snapshot_parts (snapshot_id, part, bytes) VALUES ($1, $2, $3)")
            .bind(snapshot_id)
            .bind(part as i32)
            .bind(chunk)
            .execute(&mut *transaction)
            .await?;
    }
    sqlx::query(
        "DELETE FROM learner_state_snapshots WHERE config_fingerprint = $1 AND id NOT IN \
         (SELECT id FROM learner_state_snapshots WHERE config_fingerprint = $1 ORDER BY through_seq DESC LIMIT 3)",
    )
    .bind(config_fingerprint)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await
}

/// The state as snapshot bytes (postcard: a pattern vector's floats take four bytes each).
pub fn encode(state: &LearningState) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_stdvec(state)
}

pub fn decode(bytes: &[u8]) -> Result<LearningState, postcard::Error> {
    postcard::from_bytes(bytes)
}

fn features_json(features: &EncodedFeatures) -> String {
    serde_json::to_string(features).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_features(text: &str) -> Result<EncodedFeatures, sqlx::Error> {
    let pairs: Vec<(String, f64)> = serde_json::from_str(text).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok(EncodedFeatures::from_encoded(pairs))
}

fn embedding_json(values: &[f32]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_embedding(text: &str) -> Result<Vec<f32>, sqlx::Error> {
    serde_json::from_str(text).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}
