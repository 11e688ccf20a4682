//! Independent measurements (a table's scenarios, random worlds) on every core, results kept in order.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `measure` applied to every item on as many threads as the machine has cores, the results in the items'
/// order; `on_done` hears each item's position as it finishes, in any order. The first error stops the
/// threads taking new items and is returned.
pub fn map_in_order<Item, Output, Measure>(
    items: &[Item],
    measure: Measure,
    on_done: &mut dyn FnMut(usize),
) -> anyhow::Result<Vec<Output>>
where
    Item: Sync,
    Output: Send,
    Measure: Fn(&Item) -> anyhow::Result<Output> + Sync,
{
    let next_item = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len());
    let (sender, receiver) = std::sync::mpsc::channel::<(usize, anyhow::Result<Output>)>();
    let mut outputs: Vec<Option<Output>> = items.iter().map(|_| None).collect();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let sender = sender.clone();
            let (next_item, measure) = (&next_item, &measure);
            scope.spawn(move || {
                loop {
                    let position = next_item.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(position) else {
                        return;
                    };
                    let result = measure(item);
                    let failed = result.is_err();
                    if sender.send((position, result)).is_err() || failed {
                        next_item.store(items.len(), Ordering::Relaxed);
                        return;
                    }
                }
            });
        }
        drop(sender);
        for (position, result) in receiver {
            outputs[position] = Some(result?);
            on_done(position);
        }
        Ok(())
    })?;
    Ok(outputs.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_and_every_item_is_reported_once() {
        let items: Vec<u64> = (0..40).collect();
        let mut reported = Vec::new();
        let squares = map_in_order(&items, |item| Ok(item * item), &mut |position| reported.push(position)).unwrap();
        assert_eq!(squares, items.iter().map(|item| item * item).collect::<Vec<_>>());
        reported.sort_unstable();
        assert_eq!(reported, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_is_returned() {
        let items: Vec<u64> = (0..10).collect();
        let result = map_in_order(
            &items,
            |item| {
                if *item == 3 {
                    anyhow::bail!("item 3 failed")
                }
                Ok(*item)
            },
            &mut |_| {},
        );
        assert_eq!(result.unwrap_err().to_string(), "item 3 failed");
    }
}
