// Node-RED settings for test_nodered.py: headless, loopback only, and nothing that could reach
// the internet (no diagnostics, telemetry or update checks, no palette catalogue or installs).
// The test passes the port and the flows file through the environment.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.T2M_NR_PORT, 10),
    flowFile: process.env.T2M_NR_FLOWS,
    credentialSecret: false,
    disableEditor: true,
    diagnostics: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    externalModules: {
        autoInstall: false,
        palette: { allowInstall: false, allowUpdate: false, allowUpload: false },
        modules: { allowInstall: false }
    },
    functionExternalModules: false,
    editorTheme: { projects: { enabled: false }, palette: { catalogues: [] }, tours: false },
    logging: { console: { level: "info", metrics: false, audit: false } }
};
