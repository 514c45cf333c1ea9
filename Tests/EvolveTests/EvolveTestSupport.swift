import Foundation
import TestSupport

/// A prose text for the tiny fixture models: long enough for several 32-token windows in both of its parts.
func writeEvolveText(in folder: URL, name: String = "text.txt") throws -> String {
    let sentences = [
        "The river ran past the mill and the old stone bridge, and the miller counted the sacks of grain twice.",
        "In winter the village kept its lamps lit late, and the children read aloud from a book of maps.",
        "A merchant came with salt and copper wire; he traded them for wool, cheese and a small brown horse.",
        "Nobody remembered who had planted the orchard, but every autumn the apples were shared among the houses.",
        "When the bell rang at noon the workers stopped, ate bread by the wall, and talked about the weather.",
    ]
    var text = ""
    for i in 0..<24 { text += sentences[i % sentences.count] + (i % 3 == 2 ? "\n" : " ") }
    let path = folder.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// An evolve config over the fixture llama models, written into `folder`.
func writeEvolveConfig(in folder: URL, body: String, name: String = "evolve.yml") throws -> String {
    let path = folder.appendingPathComponent(name).path
    try body.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

let llamaBase = Fixtures.fixture("models/llama-base")
let llamaFT1 = Fixtures.fixture("models/llama-ft1")
