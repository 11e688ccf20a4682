//! Groups writes into Graph batch requests as Meta allows them: at most 50 operations, at most one ad set of
//! each campaign, at most one operation per object (the queue already claims one change per object).
//! Pure; writes keep their order within a batch.

/// What the planner needs to know about one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedWrite {
    pub object_id: String,
    /// The campaign of an ad set write (Meta's one-ad-set-per-campaign rule); `None` for other objects.
    pub ad_set_campaign_id: Option<String>,
}

/// Meta's limit on operations per batch request.
pub const MAX_OPERATIONS_PER_BATCH: usize = 50;

/// The writes (by index) of each batch, in order: every write lands in exactly one batch, and each batch
/// keeps Meta's rules. Greedy: a write goes into the first batch it fits.
pub fn plan_batches(writes: &[PlannedWrite], max_operations: usize) -> Vec<Vec<usize>> {
    let max_operations = max_operations.clamp(1, MAX_OPERATIONS_PER_BATCH);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for (index, write) in writes.iter().enumerate() {
        let fits = |batch: &Vec<usize>| {
            batch.len() < max_operations
                && batch.iter().all(|other| {
                    let other = &writes[*other];
                    other.object_id != write.object_id
                        && (write.ad_set_campaign_id.is_none() || other.ad_set_campaign_id != write.ad_set_campaign_id)
                })
        };
        match batches.iter_mut().find(|batch| fits(batch)) {
            Some(batch) => batch.push(index),
            None => batches.push(vec![index]),
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn ad_set(object: u32, campaign: u32) -> PlannedWrite {
        PlannedWrite {
            object_id: format!("set-{object}"),
            ad_set_campaign_id: Some(format!("campaign-{campaign}")),
        }
    }

    #[test]
    fn ad_sets_of_one_campaign_go_to_different_batches_and_batches_stop_at_50() {
        let writes = vec![ad_set(1, 1), ad_set(2, 1), ad_set(3, 2)];
        assert_eq!(plan_batches(&writes, 50), vec![vec![0, 2], vec![1]]);
        let many: Vec<PlannedWrite> = (0..120).map(|index| ad_set(index, index)).collect();
        let sizes: Vec<usize> = plan_batches(&many, 50).iter().map(Vec::len).collect();
        assert_eq!(sizes, [50, 50, 20]);
    }

    proptest! {
        #[test]
        fn every_write_lands_in_one_batch_that_keeps_metas_rules(
            objects in proptest::collection::vec((0_u32..40, 0_u32..8, any::<bool>()), 1..200),
            max_operations in 1_usize..60,
        ) {
            let writes: Vec<PlannedWrite> = objects
                .iter()
                .map(|(object, campaign, is_ad_set)| PlannedWrite {
                    object_id: format!("object-{object}"),
                    ad_set_campaign_id: is_ad_set.then(|| format!("campaign-{campaign}")),
                })
                .collect();
            let batches = plan_batches(&writes, max_operations);
            let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
            seen.sort_unstable();
            prop_assert_eq!(seen, (0..writes.len()).collect::<Vec<_>>());
            for batch in &batches {
                prop_assert!(batch.len() <= max_operations.min(MAX_OPERATIONS_PER_BATCH));
                let objects: HashSet<&String> = batch.iter().map(|index| &writes[*index].object_id).collect();
                prop_assert_eq!(objects.len(), batch.len(), "one operation per object");
                let campaigns: Vec<&String> =
                    batch.iter().filter_map(|index| writes[*index].ad_set_campaign_id.as_ref()).collect();
                let distinct: HashSet<&&String> = campaigns.iter().collect();
                prop_assert_eq!(distinct.len(), campaigns.len(), "one ad set per campaign");
            }
        }
    }
}
