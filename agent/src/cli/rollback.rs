//! `berth rollback PROJECT [--to N]` and `berth revisions PROJECT`: a
//! running agent's revisions, and a rollback to one of them, over its API
//! (`POST /api/v1/projects/{p}/rollback`, `GET .../history`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;

use super::agent_client::{AgentConnection, encode};

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The project (its Compose name).
    pub project: String,
    /// The revision to go back to (a number from `berth revisions`, or
    /// `rev-N`); by default the last applied one before the revision
    /// running now.
    #[arg(long, value_name = "N")]
    pub to: Option<String>,
    /// Return once the rollback is queued instead of when it is applied.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the rollback to be applied.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub agent: AgentConnection,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The project (its Compose name).
    pub project: String,
    /// Print the agent's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub agent: AgentConnection,
}

pub fn rollback(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let mut path = format!("/api/v1/projects/{}/rollback?", encode(&args.project));
    if let Some(to) = &args.to {
        path.push_str(&format!("to={}&", encode(to)));
    }
    if args.no_wait {
        path.push_str("wait=false");
    } else {
        path.push_str(&format!("timeout={}s", args.timeout.as_secs().max(1)));
    }
    let answer = args
        .agent
        .call("POST", &path, args.timeout + Duration::from_secs(30))?;
    if !(200..300).contains(&answer.status) {
        bail!("rollback refused ({}): {}", answer.status, answer.message());
    }
    let b = &answer.body;
    let from = b["from"]
        .as_u64()
        .map_or("?".to_owned(), |n| format!("rev-{n}"));
    let to = b["to"].as_u64().unwrap_or_default();
    let result = b["result"].as_str().unwrap_or("Unknown");
    println!(
        "{}: {from} -> rev-{to}: {result} ({})",
        args.project,
        b["message"].as_str().unwrap_or("")
    );
    if result != "Succeeded" && result != "Queued" {
        return Ok(ExitCode::FAILURE);
    }
    if result == "Succeeded" {
        println!(
            "pinned to rev-{to} until its files change or `POST /api/v1/projects/{}/resume`",
            args.project
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/projects/{}/history", encode(&args.project));
    let answer = args.agent.call("GET", &path, Duration::from_secs(30))?;
    if answer.status != 200 {
        bail!("{} ({})", answer.message(), answer.status);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer.body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let applied = answer.body["appliedRevision"].as_u64();
    println!(
        "{:<8} {:<11} {:<25} {:<9} MESSAGE",
        "REVISION", "STATE", "CREATED", "APPLIED"
    );
    for item in answer.body["items"].as_array().into_iter().flatten() {
        let number = item["number"].as_u64().unwrap_or_default();
        let mark = if Some(number) == applied { "*" } else { "" };
        println!(
            "{:<8} {:<11} {:<25} {:<9} {}",
            format!("{number}{mark}"),
            item["state"].as_str().unwrap_or(""),
            item["firstReconciled"].as_str().unwrap_or(""),
            if item["lastApplied"].is_null() {
                "no"
            } else {
                "yes"
            },
            item["message"].as_str().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}
