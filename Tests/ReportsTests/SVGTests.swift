import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Reports
import XCTest

final class SVGTests: XCTestCase {
    func testNumbersNeverSpellNaNOrInfinity() {
        XCTAssertEqual(SVGNumber.format(1.5), "1.5")
        XCTAssertEqual(SVGNumber.format(120), "120")
        XCTAssertEqual(SVGNumber.format(0.0004), "0")
        XCTAssertEqual(SVGNumber.format(-0.0001), "0")
        XCTAssertEqual(SVGNumber.format(2.0 / 3.0, fractionDigits: 4), "0.6667")
        XCTAssertEqual(SVGNumber.format(1e12), "1000000000000")
        XCTAssertNil(SVGNumber.format(.nan))
        XCTAssertNil(SVGNumber.format(.infinity))
        XCTAssertNil(SVGNumber.readable(-.infinity))
        XCTAssertEqual(SVGNumber.readable(0.998712345), "0.99871")
        XCTAssertEqual(SVGNumber.readable(1.23456e-7), "1.2346e-07")
    }

    func testEscaping() {
        XCTAssertEqual(XMLEscape.text("a<b & c>d \"q\" 'a'"), "a&lt;b &amp; c&gt;d \"q\" 'a'")
        XCTAssertEqual(XMLEscape.attribute("a<b & \"q\" 'a'"), "a&lt;b &amp; &quot;q&quot; &apos;a&apos;")
        XCTAssertEqual(XMLEscape.attribute("x\ny\tz\r"), "x&#10;y&#9;z&#13;")
        XCTAssertEqual(XMLEscape.text("bell\u{07}nul\u{00}"), "bell\u{FFFD}nul\u{FFFD}")
        XCTAssertEqual(XMLEscape.text("\u{FFFE}ok"), "\u{FFFD}ok")
    }

    func testNonFiniteElementIsLeftOutAsAComment() {
        let bad = SVGElement.rect(x: .nan, y: 0, width: 1, height: 1, fill: "#000")
        let xml = bad.render()
        XCTAssertTrue(xml.hasPrefix("<!--"), xml)
        XCTAssertTrue(xml.contains("attribute x"), xml)
        XCTAssertFalse(xml.lowercased().contains("nan\""), xml)
        let line = SVGElement.polyline([(0, 0), (1, .nan), (2, 2), (3, 3)], stroke: "#000")
        XCTAssertEqual(line?.attribute("d"), .text("M0 0 M2 2 L3 3"))
        XCTAssertNil(SVGElement.polyline([(.nan, 1)], stroke: "#000"))
    }

    func testNiceTicks() {
        XCTAssertEqual(NiceTicks.values(from: 0, to: 1, count: 5), [0, 0.2, 0.4, 0.6, 0.8, 1.0].map { $0 }, accuracy: 1e-12)
        XCTAssertEqual(NiceTicks.values(from: 0.93, to: 1.0, count: 4), [0.94, 0.96, 0.98, 1.0], accuracy: 1e-12)
        XCTAssertEqual(NiceTicks.step(span: 37, count: 5), 10)
        let e = NiceTicks.extended(3.2, 97.1, count: 5)
        XCTAssertEqual(e.lo, 0)
        XCTAssertEqual(e.hi, 100)
        XCTAssertEqual(NiceTicks.label(0.30000000000000004, step: 0.1), "0.3")
        XCTAssertEqual(NiceTicks.values(from: .nan, to: 1), [])
        XCTAssertEqual(NiceTicks.values(from: 2, to: 2), [2])
    }

    func testScales() {
        let y = LinearScale(domain: (0, 10), range: (100, 0))
        XCTAssertEqual(y(0), 100)
        XCTAssertEqual(y(2.5), 75)
        XCTAssertEqual(y.fraction(20), 1)
        let flat = LinearScale(domain: (3, 3), range: (0, 10))
        XCTAssertEqual(flat(3), 5)
        let bands = BandScale(count: 4, range: (0, 100), padding: 0.2)
        XCTAssertEqual(bands.step, 25)
        XCTAssertEqual(bands.bandwidth, 20)
        XCTAssertEqual(bands.position(1), 27.5)
        XCTAssertEqual(bands.center(3), 87.5)
    }

    func testViridisIsOrderedByLightness() {
        let scale = ColorScale.viridis
        XCTAssertEqual(scale.color(at: 0).hex, "#440154")
        XCTAssertEqual(scale.color(at: 1).hex, "#fde725")
        var previous = -1.0
        for i in 0...50 {
            let l = scale.color(at: Double(i) / 50).luminance
            XCTAssertGreaterThan(l, previous, "luminance must rise monotonically (t = \(Double(i) / 50))")
            previous = l
        }
        XCTAssertEqual(scale.color(at: .nan), scale.missing)
        XCTAssertEqual(scale.color(at: 0).contrastingText.hex, "#ffffff")
        XCTAssertEqual(scale.color(at: 1).contrastingText.hex, "#000000")
        XCTAssertEqual(scale.reversed().color(at: 0).hex, "#fde725")
    }

    func testDocumentParsesAsXMLAndKeepsHostileText() throws {
        var doc = SVGDocument(width: 300, height: 200, title: "A <chart> & \"more\"", summary: "ctrl\u{01}char")
        let scale = LinearScale(domain: (0, 1), range: (180, 20))
        doc.append(SVGAxis.numeric(scale, side: .left, position: 40, title: "cosine", gridLength: 200))
        doc.append(SVGAxis.categorical(BandScale(count: 2, range: (40, 240)), labels: ["q_proj", "<o>"], side: .bottom,
                                       position: 180, title: "module", rotateLabels: true))
        doc.append(SVGElement.rect(x: 50, y: 50, width: 10, height: 10, fill: "#123456").tooltip("layer 3 'q' & \"k\" <1>"))
        doc.append(SVGElement.rect(x: .infinity, y: 50, width: 10, height: 10, fill: "#123456"))
        doc.append(SVGLegend.colorBar(.viridis, domain: (0.9, 1), x: 260, y: 20, title: "cos", id: "g1", missingLabel: "n/a"))
        let xml = doc.render()
        XCTAssertFalse(xml.contains("http://") && xml.contains("href"), "no external references")
        let collected = try XMLCollector.parse(xml)
        XCTAssertEqual(collected.root, "svg")
        XCTAssertEqual(collected.rootAttributes["viewBox"], "0 0 300 200")
        XCTAssertTrue(collected.titles.contains("A <chart> & \"more\""), "\(collected.titles)")
        XCTAssertTrue(collected.titles.contains("layer 3 'q' & \"k\" <1>"), "\(collected.titles)")
        XCTAssertTrue(collected.texts.contains("<o>"))
        XCTAssertEqual(collected.count("rect"), 4, "background, cell, legend bar, missing swatch… and not the infinite one: \(collected.counts)")
        XCTAssertEqual(collected.count("stop"), 33)
    }
}

/// Element names, attributes and text of an XML document, via Foundation's XMLParser.
final class XMLCollector: NSObject, XMLParserDelegate {
    var root: String?
    var rootAttributes: [String: String] = [:]
    var counts: [String: Int] = [:]
    var titles: [String] = []
    var texts: [String] = []
    /// `<title>` text of each element that has one, keyed by the parent's attributes.
    var tooltipsByParent: [(parent: String, attributes: [String: String], title: String)] = []
    private var stack: [(name: String, attributes: [String: String], text: String)] = []
    private var error: Error?

    static func parse(_ xml: String) throws -> XMLCollector {
        let parser = XMLParser(data: Data(xml.utf8))
        let c = XMLCollector()
        parser.delegate = c
        guard parser.parse() else {
            throw NSError(domain: "XML", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?") at line \(parser.lineNumber)"])
        }
        return c
    }

    func count(_ name: String) -> Int { counts[name] ?? 0 }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if root == nil { root = name; rootAttributes = attributes }
        counts[name, default: 0] += 1
        stack.append((name, attributes, ""))
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        let e = stack.removeLast()
        if name == "title" {
            titles.append(e.text)
            if let parent = stack.last { tooltipsByParent.append((parent.name, parent.attributes, e.text)) }
        } else if name == "text" {
            texts.append(e.text)
        }
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
