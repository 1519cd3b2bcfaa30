// bench/peers/grammy/echo_bot.js — the two-state echo bot of bench/bot_webhook.sh,
// written the usual grammY way: webhook mode on node's http server, session in
// Redis through @grammyjs/storage-redis (ioredis), replies with ctx.reply.
//
// Same logic as bench/bot/flows/echo.yaml: no state yet ("idle") -> any text
// enters "echo" at state "ping"; then every text flips ping <-> pong; the text
// is kept in the session and echoed back.
//
// Per update: session read (GET), the middleware (await ctx.reply: one
// sendMessage to API_ROOT, awaited), session write (SET ... EX), and only then
// the 200 to the webhook request (webhookCallback awaits the whole middleware
// stack, and the session middleware writes after `next()` resolves). An error
// (Redis down, sendMessage failed) answers 500, so Telegram would retry.
//
// Env: HOST (127.0.0.1), PORT (0 = any free one), API_ROOT (the Bot API base
// URL), BOT_TOKEN, WEBHOOK_SECRET, REDIS_URL, KEY_PREFIX (vnbench:grammy:),
// WEBHOOK_PATH (/telegram/webhook), SESSION_TTL (seconds, 2592000 = 30 days,
// vestnik's CONVERSATION_TTL default). Prints {"listening":PORT} once ready.
"use strict";

const http = require("node:http");
const { Bot, session, webhookCallback } = require("grammy");
const { RedisAdapter } = require("@grammyjs/storage-redis");
const { Redis } = require("ioredis");

const env = process.env;
const token = env.BOT_TOKEN || "987654321:bench";
const secret = env.WEBHOOK_SECRET || "";
const path = env.WEBHOOK_PATH || "/telegram/webhook";
const prefix = env.KEY_PREFIX || "vnbench:grammy:";

const redis = new Redis(env.REDIS_URL || "redis://127.0.0.1:6379/0");
redis.on("error", (err) => console.error(`redis: ${err.message}`));

const bot = new Bot(token, {
    client: { apiRoot: env.API_ROOT || "https://api.telegram.org" },
    // Given up front, so there is no getMe call (bot.init() is a no-op).
    botInfo: {
        id: Number(token.split(":")[0]),
        is_bot: true,
        first_name: "Vestnik Fake Bot",
        username: "vestnik_fake_bot",
        can_join_groups: true,
        can_read_all_group_messages: false,
        supports_inline_queries: false,
        can_connect_to_business: false,
        has_main_web_app: false,
    },
});

bot.use(
    session({
        initial: () => ({}),
        prefix, // the key is prefix + chat id (grammY's default key: the chat)
        storage: new RedisAdapter({ instance: redis, ttl: Number(env.SESSION_TTL || 2592000) }),
    }),
);

bot.on("message:text", async (ctx) => {
    const s = ctx.session;
    if (!s.flow) {
        s.flow = "echo"; // idle -> echo/ping
        s.state = "ping";
    } else {
        s.state = s.state === "ping" ? "pong" : "ping";
    }
    s.text = ctx.message.text;
    await ctx.reply(ctx.message.text);
});

// No bot.catch(): an error rejects the webhook handler and we answer 500.
const handle = webhookCallback(bot, "http", { secretToken: secret || undefined });

const server = http.createServer((req, res) => {
    if (req.method === "POST" && req.url === path) {
        handle(req, res).catch((err) => {
            if (!res.headersSent) {
                res.writeHead(500, { "Content-Type": "text/plain" });
                res.end(`${err && err.message ? err.message : err}\n`);
            }
            if (!server.errorLogged) {
                server.errorLogged = true; // once: a down dependency would flood the log
                console.error(`update failed: ${err && err.error ? err.error : err}`);
            }
        });
        return;
    }
    if (req.method === "GET" && req.url === "/healthz") {
        res.writeHead(redis.status === "ready" ? 200 : 503).end();
        return;
    }
    res.writeHead(404).end();
});
server.keepAliveTimeout = 30000;

redis.once("ready", () => {
    server.listen(Number(env.PORT || 0), env.HOST || "127.0.0.1", () => {
        process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
    });
});

function stop() {
    server.close();
    server.closeAllConnections();
    redis.quit().finally(() => process.exit(0));
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
