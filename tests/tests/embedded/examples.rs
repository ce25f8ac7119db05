//! The shipped examples (examples/ with events/examples.jsonl and events/contacts.json) reach
//! the outcome each example's description promises.

use crmflow_core::definition::load::load_programs;
use crmflow_core::event::parse_events_text;
use crmflow_core::run::{RunStatus, StepStatus};
use crmflow_core::simulate::{RunReport, SimulationOptions, Simulator};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn simulate_examples() -> (Vec<RunReport>, Simulator) {
    let programs = load_programs(&repo().join("examples")).expect("examples load");
    let text = std::fs::read_to_string(repo().join("events/examples.jsonl")).expect("events file");
    let events: Vec<_> = parse_events_text(&text)
        .into_iter()
        .map(|e| e.expect("example events parse"))
        .collect();
    let contacts: Vec<Map<String, Value>> =
        serde_json::from_str(&std::fs::read_to_string(repo().join("events/contacts.json")).expect("contacts"))
            .expect("contacts parse");
    let contacts: HashMap<String, Map<String, Value>> = contacts
        .into_iter()
        .map(|c| (c["id"].as_str().expect("contact id").to_string(), c))
        .collect();
    let options = SimulationOptions {
        log_effects: true,
        ..SimulationOptions::default()
    };
    let mut sim = Simulator::new(programs, contacts, options);
    let reports = sim.run(events).await;
    assert!(sim.errors.is_empty(), "engine errors: {:?}", sim.errors);
    (reports, sim)
}

fn runs_of<'a>(reports: &'a [RunReport], automation: &str) -> Vec<&'a RunReport> {
    reports.iter().filter(|r| r.automation_id == automation).collect()
}

fn run_for<'a>(reports: &'a [RunReport], automation: &str, record: &str) -> &'a RunReport {
    reports
        .iter()
        .find(|r| r.automation_id == automation && r.subject.id == record)
        .unwrap_or_else(|| panic!("no {automation} run for {record}"))
}

fn step_statuses(run: &RunReport) -> Vec<(String, StepStatus)> {
    run.steps.iter().map(|s| (s.step_id.clone(), s.status)).collect()
}

fn s(id: &str, status: StepStatus) -> (String, StepStatus) {
    (id.to_string(), status)
}

#[tokio::test]
async fn vip_routing_notifies_tags_and_stamps_only_vips() {
    let (reports, sim) = simulate_examples().await;
    let runs = runs_of(&reports, "vip-routing");
    assert_eq!(runs.len(), 1, "only the VIP contact's conversation enrolls");
    let run = runs[0];
    assert_eq!(run.subject.contact_id.as_deref(), Some("C1"));
    assert_eq!(run.status, RunStatus::Completed);
    let crm = sim.crm.sent.lock().unwrap();
    let of_run: Vec<_> = crm.iter().filter(|c| c.run_id == run.run_id).collect();
    let commands: Vec<&str> = of_run.iter().map(|c| c.command.command.as_str()).collect();
    assert_eq!(commands, ["notify", "add_tag", "update_contact"]);
    assert_eq!(of_run[0].command.params["channel"], "vip-support");
    assert_eq!(of_run[1].command.params["tag"], "VIP_Conversation");
    assert_eq!(
        of_run[2].command.params["fields"]["last_vip_contact"],
        "2026-03-02T09:00:00Z"
    );
}

#[tokio::test]
async fn lead_follow_up_takes_each_reply_path() {
    let (reports, sim) = simulate_examples().await;
    assert_eq!(
        runs_of(&reports, "lead-follow-up").len(),
        3,
        "the Referral lead (L4) does not enroll"
    );
    use StepStatus::*;
    // No reply at all: welcome, follow-up after 2 days, assigned after 5 more.
    let l1 = run_for(&reports, "lead-follow-up", "L1");
    assert_eq!(
        step_statuses(l1),
        [
            s("wait-1h", Completed),
            s("welcome-email", Completed),
            s("await-reply", TimedOut),
            s("follow-up-email", Completed),
            s("await-second-reply", TimedOut),
            s("assign-to-sales-rep", Completed),
        ]
    );
    assert_eq!(
        l1.steps[1].started_at.to_string(),
        "2026-03-02T15:00:00Z",
        "welcome 1 h after the lead"
    );
    assert_eq!(
        l1.steps[3].started_at.to_string(),
        "2026-03-04T15:00:00Z",
        "follow-up 2 days later"
    );
    // 5 calendar days in America/New_York across the DST change: 10:00 EST → 10:00 EDT.
    assert_eq!(l1.steps[5].started_at.to_string(), "2026-03-09T14:00:00Z");
    // Replied within 2 days: only the welcome email.
    let l2 = run_for(&reports, "lead-follow-up", "L2");
    assert_eq!(
        step_statuses(l2),
        [
            s("wait-1h", Completed),
            s("welcome-email", Completed),
            s("await-reply", Completed)
        ]
    );
    assert_eq!(l2.status, RunStatus::Completed);
    // Replied after the follow-up: not assigned.
    let l3 = run_for(&reports, "lead-follow-up", "L3");
    assert_eq!(
        l3.steps.last().map(|s| (s.step_id.as_str(), s.status)),
        Some(("await-second-reply", Completed))
    );
    assert!(!l3.steps.iter().any(|s| s.step_id == "assign-to-sales-rep"));
    let emails = sim.email.sent.lock().unwrap();
    let to_grace: Vec<_> = emails.iter().filter(|(_, e)| e.to == "grace@example.com").collect();
    assert_eq!(to_grace.len(), 2, "welcome + follow-up to the lead who never replied");
    assert!(
        to_grace[0]
            .1
            .html
            .as_deref()
            .unwrap_or_default()
            .contains("crmflow Cloud")
    );
    let assignments: Vec<_> = sim
        .crm
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.command.command == "assign")
        .cloned()
        .collect();
    assert!(
        assignments
            .iter()
            .any(|c| c.run_id == l1.run_id && c.command.params["queue_id"] == "sales-reps")
    );
    assert!(
        !assignments
            .iter()
            .any(|c| c.run_id == l2.run_id || c.run_id == l3.run_id)
    );
}

#[tokio::test]
async fn negative_sentiment_creates_ticket_notifies_and_tags() {
    let (reports, sim) = simulate_examples().await;
    let runs = runs_of(&reports, "negative-sentiment");
    assert_eq!(runs.len(), 1, "only the message scored below 0.3 enrolls");
    assert_eq!(runs[0].subject.id, "M3");
    assert_eq!(runs[0].status, RunStatus::Completed);
    let crm = sim.crm.sent.lock().unwrap();
    let commands: Vec<&str> = crm
        .iter()
        .filter(|c| c.run_id == runs[0].run_id)
        .map(|c| c.command.command.as_str())
        .collect();
    assert_eq!(commands, ["create_ticket", "notify", "add_tag"]);
    assert!(
        crm.iter()
            .any(|c| c.run_id == runs[0].run_id && c.command.params["tag"] == "Needs_Attention")
    );
}

#[tokio::test]
async fn critical_case_routing_flat_form_assigns_and_notifies() {
    let (reports, sim) = simulate_examples().await;
    let runs = runs_of(&reports, "auto-assign-high-priority-cases");
    assert_eq!(runs.len(), 1, "only the critical case enrolls");
    assert_eq!(runs[0].subject.id, "CASE1");
    assert_eq!(
        step_statuses(runs[0]),
        [
            s("action-1", StepStatus::Completed),
            s("action-2", StepStatus::Completed)
        ]
    );
    let crm = sim.crm.sent.lock().unwrap();
    let cmds: Vec<_> = crm.iter().filter(|c| c.run_id == runs[0].run_id).collect();
    assert_eq!(cmds[0].command.command, "assign");
    assert_eq!(cmds[0].command.params["queue_id"], "tier-2-support");
    assert_eq!(cmds[1].command.command, "notify");
    assert_eq!(cmds[1].command.params["message"], "Critical case created");
}

#[tokio::test]
async fn closed_won_emails_an_account_brief_over_200k_only() {
    let (reports, sim) = simulate_examples().await;
    let runs = runs_of(&reports, "closed-won-brief");
    assert_eq!(runs.len(), 1, "the 50,000 deal does not enroll");
    assert_eq!(runs[0].subject.id, "O1");
    let emails = sim.email.sent.lock().unwrap();
    let brief = emails
        .iter()
        .find(|(k, _)| k.starts_with(&runs[0].run_id))
        .expect("brief sent");
    assert_eq!(brief.1.to, "owner@example.com");
    assert!(brief.1.subject.contains("Initech"));
    assert!(
        brief
            .1
            .html
            .as_deref()
            .unwrap_or_default()
            .contains("<b>Negotiation</b>")
    );
}

#[tokio::test]
async fn click_funnel_tags_clickers_and_reminds_the_others() {
    let (reports, sim) = simulate_examples().await;
    use StepStatus::*;
    let clicker = run_for(&reports, "offer-click-funnel", "C5");
    assert_eq!(
        step_statuses(clicker),
        [
            s("send-offer", Completed),
            s("wait-3-days", Cancelled),
            s("clicked-offer", Completed),
            s("tag-clicker", Completed)
        ]
    );
    assert_eq!(clicker.status, RunStatus::Completed);
    let other = run_for(&reports, "offer-click-funnel", "C3");
    assert_eq!(
        step_statuses(other),
        [
            s("send-offer", Completed),
            s("wait-3-days", Completed),
            s("send-reminder", Completed),
            s("clicked-offer", TimedOut)
        ]
    );
    // 3 calendar days in Europe/Berlin, then a 7-day goal timeout.
    assert_eq!(other.steps[2].started_at.to_string(), "2026-03-05T08:00:00Z");
    let emails = sim.email.sent.lock().unwrap();
    assert!(
        !emails
            .iter()
            .any(|(k, e)| k.starts_with(&clicker.run_id) && e.subject.starts_with("Reminder"))
    );
    let crm = sim.crm.sent.lock().unwrap();
    assert!(
        crm.iter()
            .any(|c| c.run_id == clicker.run_id && c.command.params["tag"] == "Clicked_Offer")
    );
    assert!(
        !crm.iter()
            .any(|c| c.run_id == other.run_id && c.command.command == "add_tag")
    );
}

#[tokio::test]
async fn discount_approval_waits_for_the_manager_then_sends_the_quote() {
    let (reports, sim) = simulate_examples().await;
    let run = run_for(&reports, "discount-approval", "O3");
    use StepStatus::*;
    assert_eq!(
        step_statuses(run),
        [
            s("manager-approval", Completed),
            s("approved?", Completed),
            s("send-quote", Completed)
        ]
    );
    assert_eq!(
        run.steps[0].output.as_ref().map(|o| o["approved"].clone()),
        Some(Value::Bool(true))
    );
    let emails = sim.email.sent.lock().unwrap();
    let quote = emails
        .iter()
        .find(|(k, _)| k.starts_with(&run.run_id))
        .expect("quote email");
    assert!(
        quote
            .1
            .text
            .as_deref()
            .unwrap_or_default()
            .contains("OK for this quarter only")
    );
}
