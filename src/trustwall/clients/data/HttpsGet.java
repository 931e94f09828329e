// Tiny Java HTTPS client for the trustwall lab: GET the URL with the JVM's default trust store
// (lib/security/cacerts, which Debian links to /etc/ssl/certs/java/cacerts) and print the HTTP
// status, or print the exception as "<class>: <message>" on stderr and exit 1.
// The proxy comes from -Dhttps.proxyHost/-Dhttps.proxyPort, as for any Java program.
import java.net.HttpURLConnection;
import java.net.URL;

public class HttpsGet {
    public static void main(String[] args) {
        try {
            HttpURLConnection conn = (HttpURLConnection) new URL(args[0]).openConnection();
            int timeoutMs = args.length > 1 ? Integer.parseInt(args[1]) * 1000 : 15000;
            conn.setConnectTimeout(timeoutMs);
            conn.setReadTimeout(timeoutMs);
            System.out.println(conn.getResponseCode());
            conn.disconnect();
        } catch (Exception e) {
            System.err.println(e.getClass().getName() + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
