// Local MongoDB-compatible server for tests and `make run`: mongo-java-server with its oplog
// enabled (change streams), in memory or on disk (H2). Not for production.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.List;
import java.util.concurrent.CountDownLatch;

public class LocalMongo {
    // PyMongo 4.x needs wire version >= 9; the stand-in's own "5.0" reports 8.
    static final class Version6 implements MongoVersion {
        public List<Integer> getVersionArray() { return List.of(6, 0, 0); }
        public int getWireVersion() { return 17; }
    }

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 0;
        String dataFile = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--host" -> host = args[++i];
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--data" -> dataFile = args[++i];
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        MongoBackend backend = dataFile == null ? new MemoryBackend() : new H2Backend(dataFile);
        backend.version(new Version6());
        MongoServer server = new MongoServer(backend);
        server.enableOplog();
        server.bind(host, port);
        var address = server.getLocalAddress();
        System.out.println("mongodb://" + address.getHostString() + ":" + address.getPort()
            + "/?directConnection=true");
        System.out.flush();
        CountDownLatch stop = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.shutdownNow();
            backend.close();
            stop.countDown();
        }));
        stop.await();
    }
}
