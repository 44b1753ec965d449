use super::*;
use crate::wire::summary::MessagesSummary;

fn facts(body: &str) -> RequestFacts {
    RequestFacts::from_summary(
        &MessagesSummary::parse(body.as_bytes()).unwrap(),
        body.as_bytes(),
    )
}

fn classifier() -> Classifier {
    Classifier::new(&ClassifyRules::default())
}

fn class(body: &str) -> Classification {
    classifier().classify(&facts(body), None)
}

#[test]
fn explicit_header_wins() {
    let body = r#"{"model":"claude-opus-4-8","messages":[{"role":"user","content":"design the architecture"}]}"#;
    let c = classifier().classify(&facts(body), Some("simple"));
    assert_eq!(c.complexity, Complexity::Simple);
    assert_eq!(c.reason, "x-pai-complexity: simple");
}

#[test]
fn probes_and_warmups_are_simple() {
    let probe = r#"{"model":"claude-opus-4-8","max_tokens":1,"messages":[{"role":"user","content":"quota"}]}"#;
    assert_eq!(class(probe).complexity, Complexity::Simple);
    let warmup = r#"{"model":"claude-sonnet-5","messages":[{"role":"user","content":[{"type":"text","text":"Warmup"}]}]}"#;
    assert_eq!(class(warmup).complexity, Complexity::Simple);
}

#[test]
fn the_seeds_categories() {
    let cases = [
        (
            r#"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"Write a 5-word title for this chat"}]}"#,
            Complexity::Simple,
        ),
        (
            r#"{"model":"claude-sonnet-5","messages":[{"role":"user","content":"Please summarize this file"}]}"#,
            Complexity::Simple,
        ),
        (
            r#"{"model":"claude-sonnet-5","tools":[{"name":"a","input_schema":{}}],"messages":[{"role":"user","content":"fix the bug in parse()"}]}"#,
            Complexity::Medium,
        ),
        (
            r#"{"model":"claude-opus-4-8","messages":[{"role":"user","content":"Design the architecture for a plugin system"}]}"#,
            Complexity::Complex,
        ),
        (
            r#"{"model":"claude-sonnet-5","thinking":{"type":"enabled","budget_tokens":32000},"messages":[{"role":"user","content":"security review of auth.rs"}]}"#,
            Complexity::Complex,
        ),
    ];
    for (body, expected) in cases {
        let c = class(body);
        assert_eq!(c.complexity, expected, "{body}: {}", c.reason);
    }
}

#[test]
fn the_reason_names_the_signals() {
    let c = class(
        r#"{"model":"claude-opus-4-8","messages":[{"role":"user","content":"Design the architecture"}]}"#,
    );
    assert_eq!(
        c.reason,
        "'design': complex work + opus asked (weak): complex"
    );
    let c = class(
        r#"{"model":"claude-opus-5-5","messages":[{"role":"user","content":"summarize src/main.rs"}]}"#,
    );
    assert_eq!(
        c.reason,
        "'summarize': simple work + opus asked (weak): simple"
    );
}

#[test]
fn system_reminders_are_not_the_prompt() {
    let body = r#"{"model":"claude-sonnet-5","messages":[{"role":"user","content":[
        {"type":"text","text":"<system-reminder>read the security architecture notes</system-reminder>"},
        {"type":"text","text":"hello there"}]}]}"#;
    let f = facts(body);
    assert_eq!(f.latest_user_text, "hello there");
}

#[test]
fn tool_loops_and_images_are_seen() {
    let body = r#"{"model":"claude-sonnet-5","messages":[{"role":"user","content":"go"},
        {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"Bash","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"},
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}}]}]}"#;
    let f = facts(body);
    assert!(f.in_tool_loop);
    assert!(f.has_images);
    assert_eq!(f.latest_user_text, "go");
}
