// An empty program for the per-library link checks (src/CMakeLists.txt): linking it with one
// library whole proves that library's declared dependencies are all it needs.
int main() {
    return 0;
}
