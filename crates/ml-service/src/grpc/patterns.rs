//! FindSimilarPatterns and the accounts' pattern sharing: the cross-learner over gRPC.

use adloop_proto::ml::v1::{
    AdPrior, FindSimilarPatternsRequest, FindSimilarPatternsResponse, GetPatternSharingRequest, PatternSharing,
    SetPatternSharingRequest, SimilarPattern,
};
use adloop_service_kit::error::{ErrorCode, ServiceError};
use tonic::Status;

use crate::learning::validate::{MAX_AD_ID_LENGTH, accept_embedding, checked_identifier};
use crate::learning::{LearningError, LearningService, PatternQuery};

/// The most patterns one query may ask for.
pub const MAX_TOP_K: u32 = 100;
const DEFAULT_TOP_K: u32 = 5;

pub async fn find_similar_patterns(
    learning: &LearningService,
    request: FindSimilarPatternsRequest,
) -> Result<FindSimilarPatternsResponse, Status> {
    let top_k = match request.top_k {
        0 => DEFAULT_TOP_K,
        top_k if top_k <= MAX_TOP_K => top_k,
        _ => return Err(invalid("top_k", &format!("must be at most {MAX_TOP_K}"))),
    };
    let account_id = checked_account_id(&request.account_id)?;
    let query = pattern_query(learning, &request)?;
    let found = learning
        .similar_patterns(&query, account_id, top_k as usize)
        .await
        .map_err(unavailable)?;
    Ok(FindSimilarPatternsResponse {
        patterns: found
            .patterns
            .iter()
            .map(|pattern| SimilarPattern {
                pattern_id: pattern.pattern_id.clone(),
                similarity: pattern.similarity,
                impressions: pattern.delivery.impressions,
                clicks: pattern.delivery.clicks,
                conversions: pattern.delivery.conversions,
                ctr_lift: pattern.ctr_lift(),
                conversion_lift: pattern.conversion_lift(),
                accounts: pattern.accounts as u32,
            })
            .collect(),
        prior: found.prior.map(|prior| AdPrior {
            source: prior.source,
            expected_ctr: prior.expected_ctr,
            ctr_strength_impressions: prior.ctr_strength_impressions,
            expected_conversions_per_click: prior.expected_conversions_per_click,
            conversion_strength_conversions: prior.conversion_strength_conversions,
            rates_are_lifts: prior.rates_are_lifts,
        }),
    })
}

/// The request's features or embedding (one of them, not both), checked.
fn pattern_query(learning: &LearningService, request: &FindSimilarPatternsRequest) -> Result<PatternQuery, Status> {
    if !request.embedding.is_empty() {
        if !request.creative_features.is_empty() {
            return Err(invalid("embedding", "give creative_features or an embedding, not both"));
        }
        let dimensions = learning.cross_learner_settings().embedding_dimensions;
        let embedding = accept_embedding(&request.embedding, dimensions).map_err(|rule| invalid("embedding", &rule))?;
        return Ok(PatternQuery::Embedding(embedding.unwrap_or_default()));
    }
    let raw = request
        .creative_features
        .iter()
        .map(|(name, value)| (name.as_str(), *value));
    let features = adloop_learner::encode_features(raw, learning.max_features_per_event()).map_err(|error| {
        let field = error.feature_name().map_or("creative_features".to_owned(), |name| {
            format!("creative_features.{name}")
        });
        invalid(&field, &error.to_string())
    })?;
    if features.is_empty() {
        return Err(invalid(
            "creative_features",
            "must name at least one feature (or give an embedding)",
        ));
    }
    Ok(PatternQuery::Features(features))
}

pub async fn set_pattern_sharing(
    learning: &LearningService,
    request: SetPatternSharingRequest,
) -> Result<PatternSharing, Status> {
    let account_id = checked_account_id(&request.account_id)?;
    if account_id.is_empty() {
        return Err(invalid("account_id", "is required"));
    }
    learning
        .set_sharing(account_id, request.shares)
        .await
        .map_err(unavailable)?;
    tracing::info!(shares = request.shares, "an account changed its pattern sharing");
    Ok(PatternSharing {
        account_id: account_id.to_owned(),
        shares: request.shares,
    })
}

pub async fn get_pattern_sharing(
    learning: &LearningService,
    request: GetPatternSharingRequest,
) -> Result<PatternSharing, Status> {
    let account_id = checked_account_id(&request.account_id)?;
    let shares = learning.shares(account_id).await.map_err(unavailable)?;
    Ok(PatternSharing {
        account_id: account_id.to_owned(),
        shares,
    })
}

fn checked_account_id(account_id: &str) -> Result<&str, Status> {
    checked_identifier(account_id, MAX_AD_ID_LENGTH).map_err(|rule| invalid("account_id", &rule))
}

fn invalid(field: &str, rule: &str) -> Status {
    Status::from(ServiceError::invalid_field(field, rule))
}

fn unavailable(error: LearningError) -> Status {
    tracing::error!(%error, "cross-learner request failed");
    Status::from(ServiceError::new(
        ErrorCode::Unavailable,
        "the learning store is unavailable, retry shortly",
    ))
}
