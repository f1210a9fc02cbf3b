//! The documents say what the code does: every numeric setting's range in
//! docs/operations.md is the one the loaders enforce.

use mint_quote_config::SharedConfig;
use mint_server::config::MintConfig;

const OPERATIONS: &str = include_str!("../../docs/operations.md");

#[test]
fn the_operations_guide_states_every_range_the_loaders_enforce() {
    let ranges = MintConfig::ranges()
        .into_iter()
        .chain(SharedConfig::RANGES)
        .chain(pool_client::settings::OutboxSection::RANGES);
    for range in ranges {
        let key = format!("| `{}` |", range.key);
        let row = OPERATIONS
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("docs/operations.md has no row for {}", range.key));
        let stated = format!("`{}..={}`", range.min, range.max);
        assert!(
            row.contains(&stated),
            "docs/operations.md gives {} another range than {stated}: {row}",
            range.key
        );
    }
}
