//! Checks of `Dockerfile` and `docker-compose.yml` that need no Docker engine: the
//! image's user can write what the binaries write, every container has a health check
//! or says why not, and the compose file names only real settings.

use crate::settings::Settings;

const DOCKERFILE: &str = include_str!("../Dockerfile");
const COMPOSE: &str = include_str!("../docker-compose.yml");

/// The Dockerfile's instructions, continuation lines joined, each split into its word
/// and the rest.
fn instructions() -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in DOCKERFILE.lines() {
        let line = line.trim();
        if line.starts_with('#') && current.is_empty() {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        if !current.trim().is_empty() {
            joined.push(current.trim().to_owned());
        }
        current.clear();
    }
    joined
        .iter()
        .map(|line| match line.split_once(' ') {
            Some((word, rest)) => (word.to_owned(), rest.trim().to_owned()),
            None => (line.clone(), String::new()),
        })
        .collect()
}

/// The instructions of one stage, from its FROM to the next.
fn stage_where(starts: impl Fn(&str) -> bool, from_the_end: bool) -> Vec<(String, String)> {
    let all = instructions();
    let is_start = |(word, rest): &(String, String)| word == "FROM" && starts(rest);
    let start = if from_the_end {
        all.iter().rposition(is_start)
    } else {
        all.iter().position(is_start)
    }
    .expect("the stage");
    let end = all[start + 1..]
        .iter()
        .position(|(word, _)| word == "FROM")
        .map_or(all.len(), |i| start + 1 + i);
    all[start..end].to_vec()
}

/// The stage every image runs on (`FROM ... AS runtime`).
fn runtime_stage() -> Vec<(String, String)> {
    stage_where(
        |rest| rest.to_ascii_lowercase().ends_with(" as runtime"),
        false,
    )
}

/// The image's last stage: what a plain `docker build` makes.
fn final_stage() -> Vec<(String, String)> {
    stage_where(|_| true, true)
}

fn last(stage: &[(String, String)], instruction: &str) -> Option<String> {
    stage
        .iter()
        .rev()
        .find(|(word, _)| word == instruction)
        .map(|(_, rest)| rest.clone())
}

#[test]
fn the_images_user_owns_its_working_directory_and_logs_to_standard_output() {
    let stage = runtime_stage();
    let user = last(&stage, "USER").expect("the image runs as a user, not root");
    assert_ne!(user, "root");
    let workdir = last(&stage, "WORKDIR").expect("a WORKDIR");
    let runs: Vec<&String> = stage
        .iter()
        .filter(|(word, _)| word == "RUN")
        .map(|(_, rest)| rest)
        .collect();
    // The user's home is the working directory and is created for it, and whatever is
    // created there afterwards as root is handed to it.
    assert!(
        runs.iter().any(|run| run.contains("useradd")
            && run.contains("--create-home")
            && run.contains(&format!("--home-dir {workdir}"))
            && run.ends_with(&user)
            || run.contains(&format!("chown -R {user}:{user} {workdir}"))),
        "{workdir} is not made {user}'s: {runs:?}"
    );
    assert!(
        runs.iter()
            .any(|run| run.contains(&format!("chown -R {user}:{user} {workdir}"))),
        "directories made as root under {workdir} are handed to {user}: {runs:?}"
    );
    // Inside a container, logs go to standard output only: no log files to write.
    let env = last(&stage, "ENV").unwrap_or_default();
    assert!(
        env.split_whitespace()
            .any(|pair| pair == "AGGREGATOR_LOG_DIR=none"),
        "the image logs to standard output only: {env}"
    );
}

#[test]
fn inside_a_container_the_api_listens_on_every_interface() {
    let stage = runtime_stage();
    let env = last(&stage, "ENV").unwrap_or_default();
    assert!(
        env.split_whitespace()
            .any(|pair| pair == "AGGREGATOR_API_ADDR=0.0.0.0:3000"),
        "{env}"
    );
    let known: Vec<String> = Settings::table().into_iter().map(|row| row.env).collect();
    for pair in env.split_whitespace() {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        assert!(known.iter().any(|k| k == name), "{name} is not a setting");
    }
}

/// The stage named `name` (`FROM ... AS name`) and the stages before it: what a builder
/// stopping at `--target name` reads.
fn stages_up_to(name: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for line in DOCKERFILE.lines().map(str::trim) {
        if line.starts_with("FROM ")
            && lines.iter().any(|l: &String| {
                l.starts_with("FROM ") && l.to_ascii_lowercase().ends_with(&format!(" as {name}"))
            })
        {
            break;
        }
        lines.push(line.to_owned());
    }
    lines
}

#[test]
fn the_host_built_image_and_the_source_build_share_the_runtime_stage() {
    let host = stages_up_to("from-host");
    assert!(
        host.iter().any(|l| l == "FROM runtime AS from-host"),
        "{host:?}"
    );
    assert!(
        !host
            .iter()
            .any(|l| l.contains("cargo ") || l.contains("--mount")),
        "the host-built image reads no from-source step: {host:?}"
    );
    let stage = final_stage();
    assert_eq!(
        stage.first().map(|(w, r)| (w.as_str(), r.as_str())),
        Some(("FROM", "runtime"))
    );
}

#[test]
fn the_image_checks_the_apis_liveness() {
    let stage = runtime_stage();
    let check = last(&stage, "HEALTHCHECK").expect("a HEALTHCHECK");
    assert!(check.contains("/health/live"), "{check}");
    let installs = stage
        .iter()
        .any(|(word, rest)| word == "RUN" && rest.contains("install") && rest.contains("curl"));
    assert!(installs, "the check's curl is installed");
}

/// The compose file's services, each with its own lines.
fn services() -> Vec<(String, String)> {
    let body = COMPOSE
        .split_once("\nservices:\n")
        .map(|(_, rest)| rest)
        .expect("a services section");
    let mut services: Vec<(String, String)> = Vec::new();
    // The section ends at the next top-level key (`volumes:`).
    for line in body
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with(' ') || line.starts_with('#'))
    {
        if let Some(name) = line
            .strip_prefix("  ")
            .filter(|l| !l.starts_with(' '))
            .and_then(|l| l.strip_suffix(':'))
        {
            services.push((name.to_owned(), String::new()));
        } else if let Some((_, text)) = services.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    services
}

#[test]
fn every_compose_service_has_a_health_check_or_says_why_not() {
    let services = services();
    let names: Vec<&str> = services.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "postgres",
        "rabbitmq",
        "redis",
        "mock-vendors",
        "api",
        "worker",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {names:?}");
    }
    for (name, text) in &services {
        let own = text.contains("healthcheck:") && text.contains("test:");
        // The API's check is the image's own HEALTHCHECK.
        let from_image = name == "api" && text.contains("<<: *aggregator");
        let disabled_with_reason = text.contains("disable: true") && text.contains('#');
        assert!(
            own || from_image || disabled_with_reason,
            "{name} has no health check:\n{text}"
        );
    }
    let worker = &services
        .iter()
        .find(|(n, _)| n == "worker")
        .expect("worker")
        .1;
    assert!(
        worker.contains("AGGREGATOR_OPS_ADDR: 0.0.0.0:9464")
            && worker.contains("http://127.0.0.1:9464/health/ready")
            && !worker.contains("disable: true"),
        "the worker is checked through its ops listener:\n{worker}"
    );
    let rabbit = &services
        .iter()
        .find(|(n, _)| n == "rabbitmq")
        .expect("rabbitmq")
        .1;
    // The image is a setting whose default is the official image.
    let image = rabbit
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("image: ${AGGREGATOR_RABBITMQ_IMAGE:-rabbitmq:")
        })
        .expect("a rabbitmq image");
    let major: u32 = image
        .split(['.', '-'])
        .next()
        .and_then(|m| m.parse().ok())
        .expect("a versioned image");
    assert!(major >= 4, "rabbitmq:{image} is out of support");
}

#[test]
fn the_compose_file_names_only_real_settings_and_uses_quorum_queues() {
    let known: Vec<String> = Settings::table().into_iter().map(|row| row.env).collect();
    for line in COMPOSE.lines() {
        let line = line.trim();
        if let Some((name, _)) = line.split_once(':')
            && name.starts_with("AGGREGATOR_")
        {
            assert!(
                known.iter().any(|k| k == name),
                "{name} is not a setting of the binaries"
            );
        }
    }
    assert!(
        COMPOSE.contains("AGGREGATOR_QUORUM_QUEUES: \"true\""),
        "quorum queues"
    );
}
