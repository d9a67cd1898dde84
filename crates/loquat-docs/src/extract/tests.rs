//! Extraction over the generated fixtures: structure, pages, Chinese text, and every bound.

use super::*;
use crate::fixtures;

fn read(bytes: &[u8], format: Format) -> Result<Document, ExtractError> {
    extract(bytes, format, &Limits::default())
}

#[test]
fn pdf_pages_keep_their_numbers_and_chinese_text() {
    let document = read(&fixtures::annual_report_pdf(), Format::Pdf).expect("test value");
    assert_eq!(document.pages, Some(3));
    let page = |n| document.blocks.iter().filter(|b| b.page == Some(n)).map(|b| b.text.as_str()).collect::<Vec<_>>();
    assert_eq!(page(1)[0], "Annual Report 2023");
    assert!(page(1)[1].contains("rose to 1.2 billion yuan in 2023, up 15 percent"), "{:?}", page(1));
    assert!(page(2).iter().any(|text| text.contains("公司2023年研发投入为12亿元，同比增长15%。")), "{:?}", page(2));
    assert!(page(3).iter().any(|text| text.contains("Revenue was flat")));
}

#[test]
fn scanned_encrypted_and_damaged_pdfs_say_so() {
    assert_eq!(read(&fixtures::pdf(&["", ""]), Format::Pdf), Err(ExtractError::NoTextLayer));
    assert_eq!(read(&fixtures::encrypted_pdf(), Format::Pdf), Err(ExtractError::Encrypted));
    let mut damaged = fixtures::annual_report_pdf();
    damaged.truncate(damaged.len() / 3);
    assert!(matches!(read(&damaged, Format::Pdf), Err(ExtractError::Corrupt(_)) | Ok(_)));
    assert!(matches!(read(b"%PDF-1.4 nothing else", Format::Pdf), Err(ExtractError::Corrupt(_))));
}

#[test]
fn word_headings_paragraphs_and_tables() {
    let bytes = fixtures::docx(
        &[(Some(1), "年度报告"), (None, "研发投入持续增长 & more."), (Some(2), "Details")],
        &[&["Year", "R&D"], &["2023", "12亿元"]],
    );
    let document = read(&bytes, Format::Docx).expect("test value");
    let kinds: Vec<(BlockKind, &str)> = document.blocks.iter().map(|b| (b.kind, b.text.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (BlockKind::Heading(1), "年度报告"),
            (BlockKind::Paragraph, "研发投入持续增长 & more."),
            (BlockKind::Heading(2), "Details"),
            (BlockKind::Row, "Year | R&D"),
            (BlockKind::Row, "2023 | 12亿元"),
        ]
    );
}

#[test]
fn slides_are_pages_with_titles() {
    let bytes = fixtures::pptx(&[("Overview", &["Growth was strong."]), ("展望", &["继续投入研发。", "Second line"])]);
    let document = read(&bytes, Format::Pptx).expect("test value");
    assert_eq!(document.pages, Some(2));
    assert_eq!(document.blocks[0], Block { kind: BlockKind::Heading(1), text: "Overview".into(), page: Some(1) });
    assert_eq!(document.blocks[3], Block { kind: BlockKind::Paragraph, text: "继续投入研发。".into(), page: Some(2) });
}

#[test]
fn sheets_name_their_cells_by_the_header() {
    let bytes = fixtures::xlsx(&[("R&D", &[&["Year", "Spending"], &["2023", "1.2"], &["2022", "1.04"]])]);
    let document = read(&bytes, Format::Spreadsheet).expect("test value");
    let texts: Vec<&str> = document.blocks.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(texts, ["R&D", "Year | Spending", "Year: 2023 | Spending: 1.2", "Year: 2022 | Spending: 1.04"]);
    let csv = read("名称,数量\n苹果,3\n".as_bytes(), Format::Csv).expect("test value");
    assert_eq!(csv.blocks[1].text, "名称: 苹果 | 数量: 3");
}

#[test]
fn archive_bombs_stop_at_the_limit() {
    let limits = Limits { max_part_bytes: 1 << 20, ..Limits::default() };
    let bomb = fixtures::docx_bomb(8 << 20);
    assert!(bomb.len() < 100_000, "the bomb is small: {}", bomb.len());
    assert_eq!(extract(&bomb, Format::Docx, &limits), Err(ExtractError::TooLarge(1)));
    assert_eq!(extract(&fixtures::xlsx_bomb(8 << 20), Format::Spreadsheet, &limits), Err(ExtractError::TooLarge(1)));
    // Not a zip at all.
    assert!(matches!(read(b"PK\x03\x04garbage", Format::Docx), Err(ExtractError::Corrupt(_))));
}

#[test]
fn html_main_content_and_markdown_structure() {
    let html = "<html><head><script>var x = 1;</script><style>p{}</style></head><body><nav>Home | About</nav>\
        <main><h1>Title</h1><p>First <b>para</b>.</p><table><tr><td>a</td><td>b</td></tr></table></main>\
        <footer>© 2024</footer></body></html>";
    let document = read(html.as_bytes(), Format::Html).expect("test value");
    let texts: Vec<&str> = document.blocks.iter().map(|b| b.text.as_str()).collect();
    assert_eq!(texts, ["Title", "First para.", "a | b"]);
    // Deep nesting does not exhaust the stack.
    let deep = format!("{}text{}", "<div>".repeat(50_000), "</div>".repeat(50_000));
    assert_eq!(read(deep.as_bytes(), Format::Html).expect("test value").text(), "text");

    let markdown =
        "# Title\n\nSome text\nmore.\n\n## Part\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n\nblock\n```\n";
    let document = read(markdown.as_bytes(), Format::Markdown).expect("test value");
    let kinds: Vec<BlockKind> = document.blocks.iter().map(|b| b.kind).collect();
    assert_eq!(
        kinds,
        [
            BlockKind::Heading(1),
            BlockKind::Paragraph,
            BlockKind::Heading(2),
            BlockKind::Row,
            BlockKind::Row,
            BlockKind::Paragraph
        ]
    );
    assert_eq!(document.blocks[5].text, "```\ncode\n\nblock\n```");
}

#[test]
fn text_in_gbk_and_utf16_is_read() {
    let (gbk, _, _) = encoding_rs::GBK.encode("研发投入");
    assert_eq!(read(&gbk, Format::Text).expect("test value").text(), "研发投入");
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("hello".encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(read(&utf16, Format::Text).expect("test value").text(), "hello");
    assert_eq!(read(b"", Format::Text).expect("test value"), Document::default());
}

#[test]
fn text_is_capped() {
    let limits = Limits { max_text_chars: 10, ..Limits::default() };
    let document = extract("abcdef\n\nghijkl\n\nmnop".as_bytes(), Format::Text, &limits).expect("test value");
    assert_eq!(document.text(), "abcdef\n\nghij");
}

#[test]
fn formats_come_from_the_detected_type_then_the_name() {
    assert_eq!(Format::of("application/pdf", "x.txt"), Some(Format::Pdf));
    assert_eq!(Format::of("application/zip", "report.docx"), Some(Format::Docx));
    assert_eq!(Format::of("text/plain", "notes.md"), Some(Format::Markdown));
    assert_eq!(Format::of("application/json", "data.json"), Some(Format::Text));
    assert_eq!(Format::of("image/png", "a.png"), None);
    assert_eq!(Format::of("application/zip", "a.zip"), None);
}
