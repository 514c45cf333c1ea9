import Host
import XCTest

final class IndexRangesTests: XCTestCase {
    func testRunsAreCollapsed() {
        XCTAssertEqual(compactRanges([0, 1, 2, 3, 7, 9, 10, 11, 12]), "0-3, 7, 9-12")
        XCTAssertEqual(compactRanges([5]), "5")
        XCTAssertEqual(compactRanges([]), "")
        XCTAssertEqual(compactRanges([0, 2, 3], separator: ","), "0,2-3")
    }
}
