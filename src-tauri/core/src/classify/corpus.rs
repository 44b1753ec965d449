//! The labelled corpus (`tests/fixtures/classify-corpus.toml`): every task put into Claude
//! Code 2.1.332's recorded requests — its main loop on Opus 5.5 and on Sonnet 5.5, first
//! as the prompt and then mid tool loop, and its side requests — classified as the proxy
//! classifies them. Prints agreement per class and the confusion matrix; fails below 90 %
//! agreement in any class on either model, or if any complex task is called simple.

use serde_json::{json, Value};

use super::*;
use crate::wire::summary::MessagesSummary;

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn recorded(name: &str) -> Value {
    let path = fixture_dir().join(format!("claude-code-2.1.332-{name}-request.json"));
    serde_json::from_str::<Value>(&std::fs::read_to_string(path).unwrap()).unwrap()["body"].clone()
}

#[derive(serde::Deserialize)]
struct Corpus {
    simple: Vec<String>,
    medium: Vec<String>,
    complex: Vec<String>,
    held_out: Labelled,
    side: SideRequests,
}

#[derive(serde::Deserialize)]
struct Labelled {
    simple: Vec<String>,
    medium: Vec<String>,
    complex: Vec<String>,
}

#[derive(serde::Deserialize)]
struct SideRequests {
    title: Vec<String>,
    compact: Vec<String>,
    security_monitor: Vec<String>,
}

/// The main-loop request with `prompt` as what the user typed, on `model`.
fn main_loop(main: &Value, model: &str, prompt: &str) -> Value {
    let mut body = main.clone();
    body["model"] = json!(model);
    let blocks = body["messages"][0]["content"].as_array_mut().unwrap();
    let last = blocks.len() - 1;
    blocks[last]["text"] = json!(prompt);
    body
}

/// The same, one tool call later: the last user turn is a tool result.
fn mid_tool_loop(mut body: Value) -> Value {
    let messages = body["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": [
        {"type": "thinking", "thinking": "", "signature": "sig"},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/home/user/project/README.md"}}]}));
    messages.push(json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "# Project\\nA tool to design architecture, fix bugs and summarize."},
        {"type": "text", "text": "<system-reminder>\\nThe user's todo list is empty.\\n</system-reminder>"}]}));
    body
}

fn classify(classifier: &Classifier, body: &Value) -> Classification {
    let bytes = serde_json::to_vec(body).unwrap();
    let summary = MessagesSummary::parse(&bytes).unwrap();
    classifier.classify(&RequestFacts::from_summary(&summary, &bytes), None)
}

const CLASSES: [Complexity; 3] = [Complexity::Simple, Complexity::Medium, Complexity::Complex];

#[test]
fn the_corpus_is_classified_as_labelled() {
    let text = std::fs::read_to_string(fixture_dir().join("classify-corpus.toml")).unwrap();
    let corpus: Corpus = toml::from_str(&text).unwrap();
    let classifier = Classifier::new(&ClassifyRules::default());
    let main = recorded("main");
    let labelled: Vec<(Complexity, &String)> = [
        (Complexity::Simple, &corpus.simple),
        (Complexity::Medium, &corpus.medium),
        (Complexity::Complex, &corpus.complex),
    ]
    .into_iter()
    .flat_map(|(class, tasks)| tasks.iter().map(move |t| (class, t)))
    .collect();
    assert!(labelled.len() >= 150, "{} tasks", labelled.len());
    let mut failures = Vec::new();
    for model in ["claude-opus-5-5", "claude-sonnet-5-5"] {
        for stage in ["prompt", "mid tool loop"] {
            let mut matrix = [[0usize; 3]; 3];
            let mut wrong = Vec::new();
            for (expected, task) in &labelled {
                let mut body = main_loop(&main, model, task);
                if stage == "mid tool loop" {
                    body = mid_tool_loop(body);
                }
                let got = classify(&classifier, &body);
                matrix[*expected as usize][got.complexity as usize] += 1;
                if got.complexity != *expected {
                    wrong.push(format!(
                        "  {:?} as {:?}: {task:?} ({})",
                        expected, got.complexity, got.reason
                    ));
                }
                if *expected == Complexity::Complex && got.complexity == Complexity::Simple {
                    failures.push(format!(
                        "{model}, {stage}: complex task called simple: {task:?}"
                    ));
                }
            }
            eprintln!("\n{model}, {stage} (rows: labelled, columns: classified)");
            eprintln!(
                "{:>10} {:>7} {:>7} {:>7}   agreement",
                "", "simple", "medium", "complex"
            );
            for class in CLASSES {
                let row = matrix[class as usize];
                let total: usize = row.iter().sum();
                let agreement = 100.0 * row[class as usize] as f64 / total as f64;
                eprintln!(
                    "{:>10} {:>7} {:>7} {:>7}   {agreement:.0} %",
                    class.name(),
                    row[0],
                    row[1],
                    row[2]
                );
                if agreement < 90.0 {
                    failures.push(format!(
                        "{model}, {stage}: {} agreement {agreement:.0} %",
                        class.name()
                    ));
                }
            }
            for line in &wrong {
                eprintln!("{line}");
            }
        }
    }
    // The tasks the rules were not fitted to: printed; only a complex one called simple fails.
    let held_out = [
        (Complexity::Simple, &corpus.held_out.simple),
        (Complexity::Medium, &corpus.held_out.medium),
        (Complexity::Complex, &corpus.held_out.complex),
    ];
    let mut matrix = [[0usize; 3]; 3];
    for (expected, tasks) in held_out {
        for task in tasks {
            let got = classify(&classifier, &main_loop(&main, "claude-opus-5-5", task));
            matrix[expected as usize][got.complexity as usize] += 1;
            if got.complexity != expected {
                eprintln!(
                    "  held out, {:?} as {:?}: {task:?} ({})",
                    expected, got.complexity, got.reason
                );
            }
            if expected == Complexity::Complex && got.complexity == Complexity::Simple {
                failures.push(format!("held out: complex task called simple: {task:?}"));
            }
        }
    }
    let agreed: usize = CLASSES
        .iter()
        .map(|c| matrix[*c as usize][*c as usize])
        .sum();
    let total: usize = matrix.iter().flatten().sum();
    eprintln!("held out (Opus 5.5): {agreed} of {total} agree; rows {matrix:?}");
    // Claude Code's side requests.
    let title = recorded("title");
    for task in &corpus.side.title {
        let mut body = title.clone();
        body["messages"][0]["content"][0]["text"] = json!(format!("<session>\n{task}\n</session>\n\nWrite the title in the predominant language of the session."));
        let got = classify(&classifier, &body);
        if got.complexity != Complexity::Simple {
            failures.push(format!("title chore for {task:?}: {}", got.reason));
        }
    }
    for task in &corpus.side.compact {
        let got = classify(&classifier, &main_loop(&main, "claude-opus-5-5", task));
        if got.complexity != Complexity::Simple {
            failures.push(format!("compaction: {}", got.reason));
        }
    }
    for task in &corpus.side.security_monitor {
        let mut body = main_loop(&main, "claude-opus-5-5", task);
        body["system"] = json!([{"type": "text", "text": "You are a security monitor for autonomous AI coding agents. Decide whether the action is safe."}]);
        let got = classify(&classifier, &body);
        if got.complexity != Complexity::Complex {
            failures.push(format!("security monitor: {}", got.reason));
        }
    }
    let web = classify(&classifier, &recorded("websearch"));
    if web.complexity != Complexity::Simple {
        failures.push(format!("web search: {}", web.reason));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
