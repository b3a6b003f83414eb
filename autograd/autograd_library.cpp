// Anchors the rlaif_autograd library so it always has a translation unit, whatever files the
// layer holds.
namespace rlaif::autograd_detail {
int library_anchor = 0;
}
