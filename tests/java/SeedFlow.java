/*
 * Drives a litecoord server through the seed's flow with the console's real Java
 * client (ConsoleApiClient, compiled from ../shared/reference/java by
 * tests/test_java_client.py, never copied here).
 *
 * Usage: java SeedFlow BASE_URL SESSION
 *
 * Each step prints one JSON line on stdout: {"step": NAME, "body": <the JSON the
 * client returned, or null>} or, when the client threw, {"step": NAME, "error":
 * <the exception's simple class name>, "message": ...}. A failed step does not stop
 * the flow: the test compares every line with what the seed promises. The server's
 * test clock (POST /_test/clock, serve --test-clock) makes leases lapse: this
 * driver never sleeps.
 */

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.time.Instant;
import org.opensearch.migrations.bulkload.workcoordination.ConsoleApiClient;

public final class SeedFlow {
    private static final ObjectMapper JSON = new ObjectMapper();

    @FunctionalInterface
    private interface Step {
        JsonNode run() throws Exception;
    }

    private static void step(String name, Step step) {
        ObjectNode line = JSON.createObjectNode();
        line.put("step", name);
        try {
            line.set("body", step.run());
        } catch (Exception e) {
            line.put("error", e.getClass().getSimpleName());
            line.put("message", String.valueOf(e.getMessage()));
        }
        System.out.println(line.toString());
        System.out.flush();
    }

    /** The lease expiry as the RFS worker reads it: Instant.parse, which needs RFC 3339 with a Z. */
    private static JsonNode withParsedExpiry(JsonNode lease) {
        if (lease == null) {
            return null;
        }
        ObjectNode out = ((ObjectNode) lease).deepCopy();
        Instant expiry = Instant.parse(lease.get("work_item").get("lease_expiry").asText());
        out.put("parsed_lease_expiry_epoch_seconds", expiry.getEpochSecond());
        return out;
    }

    /** Moves the server's test clock; the test's own code, not part of the client under test. */
    private static JsonNode advanceClock(String baseUrl, long seconds) throws Exception {
        HttpRequest request = HttpRequest.newBuilder()
            .uri(URI.create(baseUrl + "/_test/clock"))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString("{\"advance_seconds\": " + seconds + "}"))
            .build();
        HttpResponse<String> response = HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new IllegalStateException("moving the test clock: " + response.statusCode() + " " + response.body());
        }
        return JSON.readTree(response.body());
    }

    public static void main(String[] args) {
        String baseUrl = args[0];
        String session = args[1];
        ConsoleApiClient client = new ConsoleApiClient(baseUrl, session);

        // 1. setup(): the status of a session nobody has written to yet.
        step("setup_status", client::getWorkQueueStatus);
        // 2. create the work items (the seed's two shards).
        step("create_shard0", () -> client.createWorkItem("index1_shard0", "my-index", 0, 50000, 1024000L));
        step("create_shard1", () -> client.createWorkItem("index1_shard1", "my-index", 1, 45000, 950000L));
        // 3. acquire (largest first: shard 0).
        step("acquire_w1", () -> withParsedExpiry(client.acquireWorkItem("worker-001")));
        // 4. progress and renewal.
        step("renew_w1", () -> client.renewLease("index1_shard0", "worker-001", 25000, 512000L));
        step("renew_w1_no_progress", () -> client.renewLease("index1_shard0", "worker-001", null, null));
        // The two lease errors the client distinguishes: 409, another worker holds it ...
        step("renew_w2_not_holder", () -> client.renewLease("index1_shard0", "worker-002", 1, 1L));
        // 5. complete.
        step("complete_w1", () -> client.completeWorkItem("index1_shard0", "worker-001"));
        step("acquire_w2", () -> withParsedExpiry(client.acquireWorkItem("worker-002")));
        step("complete_w1_not_holder", () -> client.completeWorkItem("index1_shard1", "worker-001"));
        // ... and 410, the caller's lease lapsed (the clock moves past the 300 s lease).
        step("advance_clock", () -> advanceClock(baseUrl, 301));
        step("renew_w2_expired", () -> client.renewLease("index1_shard1", "worker-002", 40000, 900000L));
        // 6. cleanup-expired puts the lapsed item back to pending.
        step("cleanup_expired", () -> {
            client.cleanupExpiredLeases();
            return null;
        });
        step("status_after_cleanup", client::getWorkQueueStatus);
        step("acquire_w3", () -> withParsedExpiry(client.acquireWorkItem("worker-003")));
        step("complete_w3", () -> client.completeWorkItem("index1_shard1", "worker-003"));
        // Nothing left: acquire answers 404, which the client returns as null.
        step("acquire_nothing_left", () -> client.acquireWorkItem("worker-004"));
        step("final_status", client::getWorkQueueStatus);

        // Every call of the flow on another session nobody has written to: none may break
        // the client the way a 404 from status did (and none may create the session).
        ConsoleApiClient untouched = new ConsoleApiClient(baseUrl, session + "-untouched");
        step("untouched_status", untouched::getWorkQueueStatus);
        step("untouched_acquire", () -> untouched.acquireWorkItem("worker-001"));
        step("untouched_renew", () -> untouched.renewLease("index1_shard0", "worker-001", 1, 1L));
        step("untouched_complete", () -> untouched.completeWorkItem("index1_shard0", "worker-001"));
        step("untouched_cleanup_expired", () -> {
            untouched.cleanupExpiredLeases();
            return null;
        });
        step("untouched_status_again", untouched::getWorkQueueStatus);
    }
}
