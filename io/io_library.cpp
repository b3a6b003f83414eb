// Anchors the rlaif_io library so it always has a translation unit, whatever files the layer
// holds.
namespace rlaif::io_detail {
int library_anchor = 0;
}
