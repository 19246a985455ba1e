"""The browser runtime's Python side: a static server with HTTP Range support (for tests,
benchmarks and the demo) and the headless-browser benchmark (`quantann bench --browser`).
The runtime itself is the JavaScript module in web/ over the wasm build of the kernel."""
