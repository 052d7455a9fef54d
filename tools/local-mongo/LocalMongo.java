// Local MongoDB-compatible server for tests and `make run`: mongo-java-server with its oplog
// enabled (change streams), in memory or on disk (H2). Not for production.
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.backend.memory.MemoryCollection;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.Document;
import java.util.List;
import java.util.concurrent.CountDownLatch;

public class LocalMongo {
    // PyMongo 4.x needs wire version >= 9; the stand-in's own "5.0" reports 8.
    static final class Version6 implements MongoVersion {
        public List<Integer> getVersionArray() { return List.of(6, 0, 0); }
        public int getWireVersion() { return 17; }
    }

    // mongo-java-server uses an index only when a filter has exactly the index's keys, so a
    // conditional point update such as {_id, version} scans the whole collection. MongoDB looks
    // such a filter up in the _id index and checks the other conditions on that one document;
    // so does this collection (README, "Known differences from MongoDB").
    static final class IdLookupCollection extends MemoryCollection {
        IdLookupCollection(MongoDatabase db, String name, CollectionOptions options,
                           CursorRegistry cursors) {
            super(db, name, options, cursors);
        }

        @Override
        protected QueryResult queryDocuments(Document query, Document orderBy, int skip,
                                             int limit, int batchSize, Document fields) {
            Object id = query.get("_id");
            if (id != null && query.size() > 1) {
                Document byId = new Document("_id", id);
                for (Index<Integer> index : getIndexes()) {
                    if (index.canHandle(byId)) {
                        // The full filter is still applied to the documents found.
                        return matchDocuments(query, index.getPositions(byId), orderBy, skip,
                            limit, batchSize, fields);
                    }
                }
            }
            return super.queryDocuments(query, orderBy, skip, limit, batchSize, fields);
        }
    }

    static final class IdLookupDatabase extends MemoryDatabase {
        IdLookupDatabase(String name, CursorRegistry cursors) {
            super(name, cursors);
        }

        @Override
        protected MemoryCollection openOrCreateCollection(String name, CollectionOptions options) {
            return new IdLookupCollection(this, name, options, cursorRegistry);
        }
    }

    static final class IdLookupBackend extends MemoryBackend {
        @Override
        public MemoryDatabase openOrCreateDatabase(String name) {
            return new IdLookupDatabase(name, getCursorRegistry());
        }
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
        MongoBackend backend = dataFile == null ? new IdLookupBackend() : new H2Backend(dataFile);
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
