//! `servio scale SERVICE=N [SERVICE=N...]`: runs N instances of each service. New ones start
//! on free ports and receive traffic once healthy; extra ones go newest first, drained and
//! then stopped. The count holds until the next `up`, which applies the manifest's
//! `replicas` again.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;

use super::ManifestArg;
use super::apply::{self, Summary, WaitArgs};
use crate::error::CliResult;
use crate::protocol::Intent;

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// SERVICE=N pairs, like order-service=3
    #[arg(value_name = "SERVICE=N", required = true, value_parser = parse_count)]
    pub counts: Vec<(String, u32)>,
    #[command(flatten)]
    pub manifest: ManifestArg,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// The largest count `scale` accepts: far past what one machine runs.
const MAX_INSTANCES: u32 = 1000;

fn parse_count(text: &str) -> Result<(String, u32), String> {
    let (name, count) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not SERVICE=N; write e.g. order-service=3"))?;
    let count: u32 = count
        .parse()
        .map_err(|_| format!("`{count}` is not a number of instances; write e.g. {name}=3"))?;
    if count > MAX_INSTANCES {
        return Err(format!("{count} instances is more than {MAX_INSTANCES}"));
    }
    Ok((name.to_string(), count))
}

pub fn run(args: ScaleArgs) -> CliResult<ExitCode> {
    let counts: BTreeMap<String, u32> = args.counts.into_iter().collect();
    let intent = Intent::Scale { counts };
    apply::run_verb(&args.manifest, intent, &args.wait, Summary::Done("scaled"))
}
