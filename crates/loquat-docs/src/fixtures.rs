//! Test documents made here, not downloaded: PDFs (English and Chinese pages, a scanned page
//! with no text, an encrypted file), Word, PowerPoint and Excel files, and archive bombs posing
//! as them. Tests, benchmarks and `examples/fixtures.rs` (which writes them to a folder) use
//! these; nothing in the product does.
//!
//! The PDFs are minimal but real: Helvetica for Latin text; for Chinese a CID font with
//! Identity-H encoding and a ToUnicode map, which is how PDF writers store CJK text (the glyph
//! shapes are not embedded, so viewers substitute a font; the text layer is exact).

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;

/// A PDF whose pages hold `pages` (lines separated by `\n`; a blank line starts a paragraph;
/// an empty page has no text at all, as a scan).
pub fn pdf(pages: &[&str]) -> Vec<u8> {
    // Codes for the Chinese characters used, in order of first use (1-based).
    let mut codes: BTreeMap<char, u16> = BTreeMap::new();
    for page in pages {
        for line in page.lines().filter(|line| line.chars().any(crate::search::is_cjk)) {
            for c in line.chars() {
                let next = codes.len() as u16 + 1;
                codes.entry(c).or_insert(next);
            }
        }
    }
    let mut objects: Vec<String> = Vec::new();
    // 1 catalog, 2 pages, 3 Helvetica, 4 Type0, 5 CID font, 6 ToUnicode, 7 font descriptor, then
    // page + content pairs.
    let kids: Vec<String> = (0..pages.len()).map(|index| format!("{} 0 R", 8 + index * 2)).collect();
    objects.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    objects.push(format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()));
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".into());
    objects.push(
        "<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /Identity-H \
         /DescendantFonts [5 0 R] /ToUnicode 6 0 R >>"
            .into(),
    );
    objects.push(
        "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /STSong-Light /CIDSystemInfo \
         << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /DW 1000 /CIDToGIDMap /Identity \
         /FontDescriptor 7 0 R >>"
            .into(),
    );
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n/CIDSystemInfo << /Registry (Adobe) \
         /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<(&char, &u16)> = codes.iter().collect();
    for group in entries.chunks(100) {
        cmap.push_str(&format!("{} beginbfchar\n", group.len()));
        for (c, code) in group {
            let mut units = [0u16; 2];
            let hex: String = c.encode_utf16(&mut units).iter().map(|unit| format!("{unit:04X}")).collect();
            cmap.push_str(&format!("<{code:04X}> <{hex}>\n"));
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    objects.push(stream(&cmap));
    objects.push(
        "<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [0 -200 1000 900] /ItalicAngle 0 \
         /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>"
            .into(),
    );
    for page in pages {
        let mut content = String::new();
        if !page.trim().is_empty() {
            content.push_str("BT\n72 760 Td\n");
            for line in page.lines() {
                if line.trim().is_empty() {
                    content.push_str("0 -16 Td\n");
                    continue;
                }
                if line.chars().any(crate::search::is_cjk) {
                    let hex: String = line.chars().map(|c| format!("{:04X}", codes[&c])).collect();
                    content.push_str(&format!("/F2 12 Tf <{hex}> Tj\n"));
                } else {
                    let escaped = line.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)");
                    content.push_str(&format!("/F1 12 Tf ({escaped}) Tj\n"));
                }
                content.push_str("0 -16 Td\n");
            }
            content.push_str("ET\n");
        } else {
            // A scan: a page with only a drawing on it.
            content.push_str("0.5 g 72 72 468 648 re f\n");
        }
        let number = objects.len() + 1;
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> \
             /Contents {} 0 R >>",
            number + 1
        ));
        objects.push(stream(&content));
    }
    assemble(&objects, "")
}

fn stream(content: &str) -> String {
    format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len() + 1)
}

/// Objects numbered from 1, an xref table and a trailer (with `extra` trailer entries).
fn assemble(objects: &[String], extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R {extra}>>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

/// A PDF that needs a password to open (standard security handler, RC4).
pub fn encrypted_pdf() -> Vec<u8> {
    let objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>".to_owned(),
        format!("<< /Filter /Standard /V 1 /R 2 /P -44 /O <{}> /U <{}> >>", "7A".repeat(32), "5C".repeat(32)),
    ];
    assemble(&objects, "/Encrypt 4 0 R /ID [<0123456789ABCDEF0123456789ABCDEF> <0123456789ABCDEF0123456789ABCDEF>] ")
}

fn zip(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        writer.start_file(*name, options).expect("zip member");
        writer.write_all(bytes).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#;

/// A paragraph of a Word file: `(Some(level), text)` is a heading.
pub type DocxParagraph<'a> = (Option<u8>, &'a str);

/// A Word file with paragraphs (headings by style, Chinese Word's numeric style ids) and a table.
pub fn docx(paragraphs: &[DocxParagraph<'_>], table: &[&[&str]]) -> Vec<u8> {
    let mut body = String::new();
    for (level, text) in paragraphs {
        let style = level.map(|level| format!("<w:pPr><w:pStyle w:val=\"{level}\"/></w:pPr>")).unwrap_or_default();
        body.push_str(&format!("<w:p>{style}<w:r><w:t xml:space=\"preserve\">{}</w:t></w:r></w:p>", xml_escape(text)));
    }
    if !table.is_empty() {
        body.push_str("<w:tbl>");
        for row in table {
            body.push_str("<w:tr>");
            for cell in *row {
                body.push_str(&format!("<w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc>", xml_escape(cell)));
            }
            body.push_str("</w:tr>");
        }
        body.push_str("</w:tbl>");
    }
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    // Heading styles with numeric ids, as a Chinese Word writes them; their names say what they are.
    let styles = (1..=3)
        .map(|level| {
            format!(r#"<w:style w:type="paragraph" w:styleId="{level}"><w:name w:val="heading {level}"/></w:style>"#)
        })
        .collect::<String>();
    let styles = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">{styles}</w:styles>"#
    );
    zip(&[
        ("[Content_Types].xml", format!(r#"{CONTENT_TYPES}<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#).into_bytes()),
        ("word/document.xml", document.into_bytes()),
        ("word/styles.xml", styles.into_bytes()),
    ])
}

/// A PowerPoint file, one slide per `(title, body lines)`.
pub fn pptx(slides: &[(&str, &[&str])]) -> Vec<u8> {
    let mut members = vec![(
        "[Content_Types].xml",
        format!(r#"{CONTENT_TYPES}<Override PartName="/ppt/presentation.xml" ContentType="application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"/></Types>"#).into_bytes(),
    )];
    let names: Vec<String> = (1..=slides.len()).map(|n| format!("ppt/slides/slide{n}.xml")).collect();
    for (name, (title, lines)) in names.iter().zip(slides) {
        let body: String =
            lines.iter().map(|line| format!("<a:p><a:r><a:t>{}</a:t></a:r></a:p>", xml_escape(line))).collect();
        let xml = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld><p:spTree><p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>{}</a:t></a:r></a:p></p:txBody></p:sp><p:sp><p:nvSpPr><p:nvPr><p:ph idx="1"/></p:nvPr></p:nvSpPr><p:txBody>{body}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#,
            xml_escape(title)
        );
        members.push((name.as_str(), xml.into_bytes()));
    }
    members.push((
        "ppt/presentation.xml",
        b"<p:presentation xmlns:p=\"http://schemas.openxmlformats.org/presentationml/2006/main\"/>".to_vec(),
    ));
    zip(&members)
}

/// An Excel file with one sheet per `(name, rows)`; cells that parse as numbers are numbers.
pub fn xlsx(sheets: &[(&str, &[&[&str]])]) -> Vec<u8> {
    let mut overrides = String::new();
    let mut workbook_sheets = String::new();
    let mut rels = String::new();
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for (index, (name, rows)) in sheets.iter().enumerate() {
        let n = index + 1;
        overrides.push_str(&format!(r#"<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#));
        workbook_sheets.push_str(&format!(r#"<sheet name="{}" sheetId="{n}" r:id="rId{n}"/>"#, xml_escape(name)));
        rels.push_str(&format!(r#"<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{n}.xml"/>"#));
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            data.push_str(&format!("<row r=\"{}\">", r + 1));
            for (c, cell) in row.iter().enumerate() {
                let reference = format!("{}{}", (b'A' + c as u8) as char, r + 1);
                if cell.parse::<f64>().is_ok() {
                    data.push_str(&format!("<c r=\"{reference}\"><v>{cell}</v></c>"));
                } else {
                    data.push_str(&format!(
                        "<c r=\"{reference}\" t=\"inlineStr\"><is><t>{}</t></is></c>",
                        xml_escape(cell)
                    ));
                }
            }
            data.push_str("</row>");
        }
        members.push((
            format!("xl/worksheets/sheet{n}.xml"),
            format!(r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{data}</sheetData></worksheet>"#).into_bytes(),
        ));
    }
    let mut all: Vec<(&str, Vec<u8>)> = vec![
        ("[Content_Types].xml", format!(r#"{CONTENT_TYPES}<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{overrides}</Types>"#).into_bytes()),
        ("_rels/.rels", br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_vec()),
        ("xl/workbook.xml", format!(r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>{workbook_sheets}</sheets></workbook>"#).into_bytes()),
        ("xl/_rels/workbook.xml.rels", format!(r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>"#).into_bytes()),
    ];
    all.extend(members.iter().map(|(name, bytes)| (name.as_str(), bytes.clone())));
    zip(&all)
}

/// A Word file whose document part inflates to `bytes` bytes of spaces: a zip bomb.
pub fn docx_bomb(bytes: usize) -> Vec<u8> {
    let mut document = b"<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>".to_vec();
    document.resize(document.len() + bytes, b' ');
    zip(&[("word/document.xml", document)])
}

/// An Excel file whose sheet inflates to `bytes` bytes: a zip bomb.
pub fn xlsx_bomb(bytes: usize) -> Vec<u8> {
    let good = xlsx(&[("Sheet1", &[&["a"]])]);
    let mut archive = zip::ZipArchive::new(Cursor::new(good)).expect("own zip");
    let mut members = Vec::new();
    for index in 0..archive.len() {
        let mut member = archive.by_index(index).expect("member");
        let name = member.name().to_owned();
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut member, &mut content).expect("read");
        if name.ends_with("sheet1.xml") {
            content.resize(content.len() + bytes, b' ');
        }
        members.push((name, content));
    }
    let members: Vec<(&str, Vec<u8>)> = members.iter().map(|(name, bytes)| (name.as_str(), bytes.clone())).collect();
    zip(&members)
}

/// The annual-report fixture: a small PDF with English and Chinese pages.
pub fn annual_report_pdf() -> Vec<u8> {
    pdf(&[
        "Annual Report 2023\n\nResearch and development spending rose to 1.2 billion yuan in 2023,\nup 15 percent from 2022.",
        "研发投入\n\n公司2023年研发投入为12亿元，同比增长15%。\n2022年研发投入为10.4亿元，2021年为8.7亿元。",
        "Sales\n\nRevenue was flat across all regions.",
    ])
}
