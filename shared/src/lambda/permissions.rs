//! The IAM actions each function's code needs, kept beside the code that needs them. The IaC
//! template's roles are checked against these lists by a test (no missing permission, no extra
//! one), and the end-to-end tests check that every AWS operation a function performed is
//! covered by its list.

use super::FunctionName;

/// What an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// The DynamoDB table.
    Table,
    /// Its index `GSI1` (`table/index/GSI1`): the management API's listings.
    TableIndex,
    EventsQueue,
    StepQueue,
    ActionQueue,
    CrmCommandsQueue,
    /// The SES sending identity.
    SenderIdentity,
}

/// An IAM action on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub action: &'static str,
    pub resource: Resource,
}

const fn p(action: &'static str, resource: Resource) -> Permission {
    Permission { action, resource }
}

/// The SQS event source mapping reads and deletes on behalf of the function.
const CONSUME: [&str; 3] = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];

/// Every permission a function needs.
pub fn required(function: FunctionName) -> Vec<Permission> {
    use Resource::*;
    let mut out = match function {
        // event dedupe, trigger index, enrollment, run creation, routes; Start/Event messages;
        // and, since intake starts the runs it creates as evaluate would, evaluate's list
        // load/decide/save (transactions of Put/Update/Delete), timers, dispatch; inputs held
        // while the automation is paused (Put, Query, Delete); evaluate also sends the emails
        // it performs in place (below)
        FunctionName::Intake | FunctionName::Evaluate => vec![
            p("dynamodb:GetItem", Table),
            p("dynamodb:PutItem", Table),
            p("dynamodb:UpdateItem", Table),
            p("dynamodb:DeleteItem", Table),
            p("dynamodb:Query", Table),
            p("sqs:SendMessage", StepQueue),
            p("sqs:SendMessage", ActionQueue),
            p("sqs:SendMessage", CrmCommandsQueue),
        ],
        // idempotency claim/complete, enroll/cancel (runs, routes), results, CRM commands, email
        FunctionName::Execute => vec![
            p("dynamodb:GetItem", Table),
            p("dynamodb:PutItem", Table),
            p("dynamodb:UpdateItem", Table),
            p("dynamodb:Query", Table),
            p("sqs:SendMessage", StepQueue),
            p("sqs:SendMessage", CrmCommandsQueue),
            p("ses:SendEmail", SenderIdentity),
        ],
        // the timer sweep: cursor, buckets, batch deletes; wakes onto the step queue
        FunctionName::Resume => vec![
            p("dynamodb:GetItem", Table),
            p("dynamodb:Query", Table),
            p("dynamodb:UpdateItem", Table),
            p("dynamodb:BatchWriteItem", Table),
            p("sqs:SendMessage", StepQueue),
        ],
        // the management API: definitions (create, versions, status), run reads, listings on
        // GSI1 with their BatchGetItem, kept responses of idempotent POSTs (claim, complete,
        // release), API keys by digest; task completions and cancellations onto the step queue,
        // posted events onto the events queue
        FunctionName::Api => vec![
            p("dynamodb:GetItem", Table),
            p("dynamodb:PutItem", Table),
            p("dynamodb:UpdateItem", Table),
            p("dynamodb:DeleteItem", Table),
            p("dynamodb:Query", Table),
            p("dynamodb:BatchGetItem", Table),
            p("dynamodb:Query", TableIndex),
            p("sqs:SendMessage", StepQueue),
            p("sqs:SendMessage", EventsQueue),
        ],
        // the test route: the automation's versions and the caller's API key; nothing written
        FunctionName::Simulate => vec![p("dynamodb:GetItem", Table), p("dynamodb:Query", Table)],
    };
    let consumed = match function {
        FunctionName::Intake => Some(EventsQueue),
        FunctionName::Evaluate => Some(StepQueue),
        FunctionName::Execute => Some(ActionQueue),
        FunctionName::Resume | FunctionName::Api | FunctionName::Simulate => None,
    };
    if function == FunctionName::Evaluate {
        out.push(p("ses:SendEmail", SenderIdentity));
    }
    if let Some(queue) = consumed {
        out.extend(CONSUME.iter().map(|a| p(a, queue)));
    }
    out.sort();
    out
}

/// The IAM actions that authorise an SDK operation (`TransactWriteItems` needs the item actions
/// it contains; the SQS batch operations are authorised by their single-message actions:
/// `SendMessageBatch` by `sqs:SendMessage`, `DeleteMessageBatch` by `sqs:DeleteMessage`).
pub fn actions_for_operation(service: &str, operation: &str) -> Vec<String> {
    match (service, operation) {
        ("DynamoDB", "TransactWriteItems") => {
            vec![
                "dynamodb:PutItem".into(),
                "dynamodb:UpdateItem".into(),
                "dynamodb:DeleteItem".into(),
            ]
        }
        ("DynamoDB", op) => vec![format!("dynamodb:{op}")],
        ("SQS", "SendMessageBatch") => vec!["sqs:SendMessage".into()],
        ("SQS", "DeleteMessageBatch") => vec!["sqs:DeleteMessage".into()],
        ("SQS", "ChangeMessageVisibilityBatch") => vec!["sqs:ChangeMessageVisibility".into()],
        ("SQS", op) => vec![format!("sqs:{op}")],
        ("SESv2", op) => vec![format!("ses:{op}")],
        (s, op) => vec![format!("{}:{op}", s.to_ascii_lowercase())],
    }
}
