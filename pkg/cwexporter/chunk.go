package cwexporter

import (
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// chunk splits items, in order, into consecutive batches of at most maxItems
// items whose sizes add up to at most maxBytes. An item that is larger than
// maxBytes on its own gets a batch of its own rather than being dropped, so
// the service reports the problem. No items yield no batches; a maxItems
// below 1 is treated as 1.
func chunk[T any](items []T, maxItems, maxBytes int, size func(T) int) [][]T {
	maxItems = max(maxItems, 1)
	var (
		batches [][]T
		start   int
		bytes   int
	)
	for i, it := range items {
		s := size(it)
		if i > start && (i-start == maxItems || bytes+s > maxBytes) {
			batches = append(batches, items[start:i:i])
			start, bytes = i, 0
		}
		bytes += s
	}
	if start < len(items) {
		batches = append(batches, items[start:])
	}
	return batches
}

// The size estimates below are upper bounds of the Smithy RPC v2 CBOR
// encoding of the request (RFC 8949): a text string is a 1-9 byte head plus
// its bytes, a float64 is 9 bytes, a timestamp is a 1-byte tag plus a
// float64, and every map or list is charged the worst case of 9 bytes
// (indefinite-length containers need only 2).
const (
	containerSize = 9
	float64Size   = 9
	timestampSize = 1 + float64Size
	int32Size     = 5
)

// headSize is the size of a CBOR data item head for argument n.
func headSize(n int) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	default:
		return 9
	}
}

func strSize(s string) int { return headSize(len(s)) + len(s) }

// requestOverhead is the size of a PutMetricDataInput without its datums.
func requestOverhead(namespace string) int {
	return containerSize +
		strSize("Namespace") + strSize(namespace) +
		strSize("MetricData") + containerSize
}

// datumSize is an upper bound of the encoded size of d inside MetricData.
func datumSize(d types.MetricDatum) int {
	n := containerSize
	if d.MetricName != nil {
		n += strSize("MetricName") + strSize(*d.MetricName)
	}
	if d.Dimensions != nil {
		n += strSize("Dimensions") + containerSize
		for _, dim := range d.Dimensions {
			n += containerSize
			if dim.Name != nil {
				n += strSize("Name") + strSize(*dim.Name)
			}
			if dim.Value != nil {
				n += strSize("Value") + strSize(*dim.Value)
			}
		}
	}
	if d.Value != nil {
		n += strSize("Value") + float64Size
	}
	if d.Timestamp != nil {
		n += strSize("Timestamp") + timestampSize
	}
	if d.Unit != "" {
		n += strSize("Unit") + strSize(string(d.Unit))
	}
	if d.StorageResolution != nil {
		n += strSize("StorageResolution") + int32Size
	}
	if d.StatisticValues != nil {
		n += strSize("StatisticValues") + containerSize +
			strSize("SampleCount") + strSize("Sum") + strSize("Minimum") + strSize("Maximum") +
			4*float64Size
	}
	if d.Values != nil {
		n += strSize("Values") + containerSize + len(d.Values)*float64Size
	}
	if d.Counts != nil {
		n += strSize("Counts") + containerSize + len(d.Counts)*float64Size
	}
	return n
}
