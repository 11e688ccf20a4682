//! Synthetic creatives for benchmarks that fill the pattern stores: every set of four features out of a
//! vocabulary, each a different creative (and so a different pattern).

/// Every set of four of `vocabulary` feature names (`feature_00`, `feature_01`, ...), in order, none twice:
/// C(60, 4) = 487,635 of them for a vocabulary of 60.
pub fn four_feature_creatives(vocabulary: usize) -> impl Iterator<Item = [String; 4]> {
    let name = |index: usize| format!("feature_{index:02}");
    (0..vocabulary).flat_map(move |a| {
        (a + 1..vocabulary).flat_map(move |b| {
            (b + 1..vocabulary)
                .flat_map(move |c| (c + 1..vocabulary).map(move |d| [name(a), name(b), name(c), name(d)]))
        })
    })
}
