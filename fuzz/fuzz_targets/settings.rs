//! The settings every binary reads: any arguments and environment give settings or a
//! clap error naming the problem, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use order_aggregator::settings::Settings;

/// The variables the settings read, so the fuzzer reaches each one's parser.
const VARIABLES: [&str; 12] = [
    "DATABASE_URL",
    "AMQP_URL",
    "REDIS_URL",
    "AGGREGATOR_API_ADDR",
    "AGGREGATOR_API_KEYS",
    "AGGREGATOR_VENDORS",
    "AGGREGATOR_RETRY_DELAYS_MS",
    "AGGREGATOR_WORKERS",
    "AGGREGATOR_OPS_ADDR",
    "AGGREGATOR_RESERVATION_TTL_SECS",
    "AGGREGATOR_SYNC_PAGE_SIZE",
    "AGGREGATOR_LOG_DIR",
];

fuzz_target!(|input: (Vec<String>, Vec<(u8, String)>)| {
    let (args, env) = input;
    let env: Vec<(&str, String)> = env
        .into_iter()
        .map(|(slot, value)| (VARIABLES[usize::from(slot) % VARIABLES.len()], value))
        .collect();
    let lookup = move |name: &str| {
        env.iter()
            .rev()
            .find(|(variable, _)| *variable == name)
            .map(|(_, value)| value.clone())
    };
    if let Ok(settings) = Settings::parse(args, lookup) {
        // Whatever was accepted builds each section's configuration (or says why not).
        let _ = settings.orders.config();
        let _ = settings.orders.group_commit();
        let _ = settings.sync.config();
        let _ = settings.api.config(settings.webhooks.webhook_allow_private);
    }
});
