//! Knowledge figures, in process: reading a 300-page PDF (extraction and chunking, what the
//! background reader does before embedding), and searching a knowledge base of 100,000
//! passages by keywords and hybrid (1,024-dimension vectors), with the index's memory.

use std::time::{Duration, Instant};

use loquat_core::domain::StoredChunk;
use loquat_core::id::{ChunkId, FileId, UserId};
use loquat_core::service::BuiltIndex;
use loquat_docs::extract::{Format, Limits};
use loquat_docs::{ChunkOptions, chunk_document, fixtures};
use loquat_test_support::fake_upstream::fake_embedding;
use serde_json::{Value, json};

use crate::stats::{json as summary_json, round, summarize};

const ENGLISH: &[&str] = &[
    "revenue",
    "growth",
    "research",
    "development",
    "spending",
    "profit",
    "margin",
    "customer",
    "market",
    "product",
    "quarter",
    "annual",
    "report",
    "segment",
    "region",
    "investment",
    "capital",
    "operating",
    "cash",
    "flow",
    "asset",
    "liability",
    "equity",
    "dividend",
    "employee",
    "supply",
    "chain",
    "risk",
    "strategy",
    "digital",
    "cloud",
    "service",
    "contract",
    "partner",
    "launch",
    "pipeline",
    "patent",
    "factory",
    "energy",
    "carbon",
];
const CHINESE: &[&str] = &[
    "营业收入",
    "研发投入",
    "净利润",
    "毛利率",
    "现金流",
    "资产负债",
    "股东权益",
    "分红",
    "员工人数",
    "供应链",
    "风险管理",
    "数字化",
    "云服务",
    "合同",
    "合作伙伴",
    "新产品",
    "专利",
    "工厂",
    "能源",
    "碳排放",
    "市场份额",
    "同比增长",
];

/// A small deterministic generator (no dependency needed for reproducible text).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.next() as usize % words.len()]
    }

    fn unit(&mut self) -> f32 {
        (self.next() % 2000) as f32 / 1000.0 - 1.0
    }
}

fn sentence(rng: &mut Lcg, words: usize) -> String {
    let mut out = String::new();
    for index in 0..words {
        if rng.next().is_multiple_of(3) {
            out.push_str(rng.pick(CHINESE));
        } else {
            if index > 0 {
                out.push(' ');
            }
            out.push_str(rng.pick(ENGLISH));
        }
    }
    out
}

fn read_pdf() -> Value {
    let mut rng = Lcg(7);
    let pages: Vec<String> = (0..300)
        .map(|page| {
            let mut text = format!("Section {page}\n\n");
            for _ in 0..12 {
                text.push_str(&sentence(&mut rng, 14));
                text.push('\n');
            }
            text
        })
        .collect();
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    let pdf = fixtures::pdf(&refs);
    let started = Instant::now();
    let document = loquat_docs::extract(&pdf, Format::Pdf, &Limits::default()).expect("the PDF reads");
    let extracted = started.elapsed();
    let chunks = chunk_document(&document, ChunkOptions::default());
    let total = started.elapsed();
    println!(
        "300-page PDF ({} KB): extracted in {:.0} ms, {} chunks in {:.0} ms total",
        pdf.len() / 1024,
        extracted.as_secs_f64() * 1000.0,
        chunks.len(),
        total.as_secs_f64() * 1000.0
    );
    json!({
        "pdf_kib": pdf.len() / 1024,
        "pages": document.pages,
        "extract_ms": round(extracted.as_secs_f64() * 1000.0),
        "chunks": chunks.len(),
        "read_ms": round(total.as_secs_f64() * 1000.0),
    })
}

fn search(passages: usize, dimensions: usize) -> Value {
    let mut rng = Lcg(42);
    let (user, file) = (UserId::new(), FileId::new());
    let rows: Vec<(StoredChunk, String)> = (0..passages)
        .map(|seq| {
            let chunk = StoredChunk {
                id: ChunkId::new(),
                file_id: file,
                user_id: user,
                seq: seq as u32,
                text: sentence(&mut rng, 60),
                headings: String::new(),
                page_start: Some(seq as u32 / 3),
                page_end: None,
                tokens: 120,
                embedding: Some((0..dimensions).map(|_| rng.unit()).collect()),
            };
            (chunk, "bench.pdf".to_owned())
        })
        .collect();
    let started = Instant::now();
    let index = BuiltIndex::build(1, rows);
    let built = started.elapsed();
    let memory = index.memory_bytes();
    let questions: Vec<String> = (0..200).map(|_| sentence(&mut rng, 6)).collect();
    let vectors: Vec<Vec<f32>> = (0..200).map(|_| (0..dimensions).map(|_| rng.unit()).collect()).collect();
    let mut keyword: Vec<Duration> = Vec::new();
    let mut hybrid: Vec<Duration> = Vec::new();
    for (question, vector) in questions.iter().zip(&vectors) {
        let started = Instant::now();
        let hits = index.search(question, None, 8);
        keyword.push(started.elapsed());
        assert!(!hits.is_empty());
        let started = Instant::now();
        let hits = index.search(question, Some(vector), 8);
        hybrid.push(started.elapsed());
        assert!(!hits.is_empty());
    }
    let (keyword, hybrid) = (summarize(&mut keyword), summarize(&mut hybrid));
    println!(
        "{passages} passages ({dimensions}-d vectors): built in {:.1} s, {} MiB; keyword p50 {:.1} ms p99 {:.1} ms; \
         hybrid p50 {:.1} ms p99 {:.1} ms",
        built.as_secs_f64(),
        memory >> 20,
        keyword.p50_ms,
        keyword.p99_ms,
        hybrid.p50_ms,
        hybrid.p99_ms
    );
    json!({
        "passages": passages,
        "dimensions": dimensions,
        "build_s": round(built.as_secs_f64()),
        "memory_mib": memory >> 20,
        "keyword": summary_json(keyword),
        "hybrid": summary_json(hybrid),
    })
}

/// Labelled passages (facts of one company, English and Chinese) and questions, each with the
/// passage that answers it; the questions are worded differently from their passages.
const FACTS: &[&str] = &[
    "Research and development spending rose to 1.2 billion yuan in 2023, up 15 percent from 2022.",
    "公司2023年研发投入为12亿元，同比增长15%。",
    "Revenue was flat across all regions, at 8.1 billion yuan.",
    "员工总数达到3,200人，其中研发人员占40%。",
    "The board proposed a dividend of 0.35 yuan per share.",
    "新工厂于2023年9月在苏州投产，年产能提升30%。",
    "Carbon emissions per unit of output fell 12 percent after the switch to solar power.",
    "海外市场收入占比由18%提高到24%。",
    "The largest customer accounted for 9 percent of sales, down from 14 percent.",
    "公司共获得授权专利215项，其中发明专利87项。",
];
const QUESTIONS: &[(&str, usize)] = &[
    ("How much did R&D spending grow in 2023?", 0),
    ("研发投入增长了多少", 1),
    ("What was revenue by region?", 2),
    ("研发人员有多少", 3),
    ("What dividend per share was proposed?", 4),
    ("苏州工厂什么时候投产", 5),
    ("How did carbon emissions change with solar power?", 6),
    ("海外收入占比是多少", 7),
    ("How concentrated are sales on the largest customer?", 8),
    ("获得了多少发明专利", 9),
];

/// Recall@5 over the labelled set among `distractors` generated passages: keywords alone, and
/// hybrid with the fake upstream's embedding (a hashed bag of words: what the tests can predict;
/// a real embedding model is measured by pointing the same set at it).
fn recall(distractors: usize) -> Value {
    let mut rng = Lcg(9);
    let (user, file) = (UserId::new(), FileId::new());
    let mut texts: Vec<String> = (0..distractors).map(|_| sentence(&mut rng, 40)).collect();
    let first_fact = texts.len();
    texts.extend(FACTS.iter().map(|fact| (*fact).to_owned()));
    let rows = texts
        .iter()
        .enumerate()
        .map(|(seq, text)| {
            let chunk = StoredChunk {
                id: ChunkId::new(),
                file_id: file,
                user_id: user,
                seq: seq as u32,
                text: text.clone(),
                headings: String::new(),
                page_start: None,
                page_end: None,
                tokens: 60,
                embedding: Some(fake_embedding(text)),
            };
            (chunk, "facts.txt".to_owned())
        })
        .collect();
    let index = BuiltIndex::build(1, rows);
    let (mut keyword, mut hybrid) = (0, 0);
    for (question, answer) in QUESTIONS {
        let wanted = (first_fact + answer) as u32;
        let found = |hits: Vec<loquat_core::service::Hit>| hits.iter().any(|hit| hit.position == wanted);
        keyword += usize::from(found(index.search(question, None, 5)));
        hybrid += usize::from(found(index.search(question, Some(&fake_embedding(question)), 5)));
    }
    let total = QUESTIONS.len() as f64;
    let (keyword, hybrid) = (keyword as f64 / total, hybrid as f64 / total);
    println!(
        "recall@5 over {} labelled questions among {distractors} passages: keywords {keyword:.2}, hybrid {hybrid:.2}",
        QUESTIONS.len()
    );
    json!({ "questions": QUESTIONS.len(), "distractors": distractors, "keyword": keyword, "hybrid": hybrid })
}

/// The 300-page PDF through the running server: uploaded into a knowledge base and read in the
/// background (extraction, chunking, embedding through the fake upstream), timed from the start
/// of the upload to the page saying it is ready.
async fn ingest_through_server(binary: &std::path::Path) -> Value {
    let config = [("DEFAULT_FILES_CONFIG", "embedding_model=openai/text-embedding-3-small".to_owned())];
    let setup = crate::gateway::Setup::start(binary, "knowledge", &config).await;
    let base = &setup.loquat.base;
    let created = setup
        .client
        .post(format!("{base}/knowledge"))
        .form(&[("name", "Bench")])
        .send()
        .await
        .expect("a knowledge base");
    let page = created.url().as_str().to_owned();
    let mut rng = Lcg(7);
    let pages: Vec<String> = (0..300).map(|page| format!("Section {page}\n\n{}", sentence(&mut rng, 160))).collect();
    let refs: Vec<&str> = pages.iter().map(String::as_str).collect();
    let pdf = fixtures::pdf(&refs);
    let boundary = "loquat-bench-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&pdf);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let started = Instant::now();
    let uploaded = setup
        .client
        .post(format!("{page}/upload"))
        .header("accept", "application/json")
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("upload");
    assert!(uploaded.status().is_success(), "uploaded: {}", uploaded.status());
    let stored = started.elapsed();
    loop {
        let html = setup.client.get(&page).send().await.expect("page").text().await.expect("html");
        if html.contains("Ready:") {
            break;
        }
        assert!(!html.contains("Failed:"), "the PDF failed to read");
        assert!(started.elapsed() < Duration::from_secs(300), "not ready in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready = started.elapsed();
    println!(
        "300-page PDF through the server ({} KB): stored in {:.0} ms, ready (read, chunked, embedded) in {:.0} ms",
        pdf.len() / 1024,
        stored.as_secs_f64() * 1000.0,
        ready.as_secs_f64() * 1000.0
    );
    setup.stop().await;
    json!({ "pdf_kib": pdf.len() / 1024, "stored_ms": round(stored.as_secs_f64() * 1000.0), "ready_ms": round(ready.as_secs_f64() * 1000.0) })
}

pub async fn run(binary: &std::path::Path) -> Value {
    println!("\n== knowledge ==");
    let through_server = ingest_through_server(binary).await;
    let (pdf, search, recall) =
        tokio::task::spawn_blocking(|| (read_pdf(), search(100_000, 1_024), recall(5_000))).await.expect("runs");
    json!({ "pdf_300_pages": pdf, "pdf_300_pages_server": through_server, "search_100k": search, "recall_at_5": recall })
}
